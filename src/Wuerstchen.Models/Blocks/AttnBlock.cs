using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>
/// Attention over image tokens with the condition appended to the keys and values (spec §1.6):
/// kv = [LN(x) tokens ; Linear(SiLU(cond))], x + Attention(LN(x) tokens, kv).
/// </summary>
public sealed class AttnBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly WuerstchenLayerNorm norm;
    private readonly Attention attention;
    private readonly Sequential kv_mapper;
    private readonly bool _selfAttention;

    public AttnBlock(long c, long cCond, long heads, bool selfAttention = true, double dropout = 0) : base(nameof(AttnBlock))
    {
        norm = new WuerstchenLayerNorm(c);
        attention = new Attention(c, heads, dropout);
        kv_mapper = nn.Sequential(nn.SiLU(), nn.Linear(cCond, c));
        _selfAttention = selfAttention;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor condition)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
        var kv = kv_mapper.forward(condition);
        var tokens = norm.forward(x).reshape(batch, channels, height * width).transpose(1, 2);
        if (_selfAttention)
            kv = cat([tokens, kv], dim: 1);
        var attended = attention.forward(tokens, kv).transpose(1, 2).reshape(batch, channels, height, width);
        return (x + attended).MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>Attention</c> as Würstchen uses it: biased q/k/v projections, no mask, scale head_dim^-½ (spec §1.7).</summary>
public sealed class Attention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly Sequential to_out;
    private readonly long _heads;

    public Attention(long c, long heads, double dropout = 0) : base(nameof(Attention))
    {
        if (heads <= 0 || c % heads != 0)
            throw new ArgumentException($"The attention width {c} must split evenly into {heads} heads.", nameof(heads));
        to_q = nn.Linear(c, c);
        to_k = nn.Linear(c, c);
        to_v = nn.Linear(c, c);
        to_out = nn.Sequential(nn.Linear(c, c), new SeededDropout(dropout));
        _heads = heads;
        RegisterComponents();
    }

    /// <param name="query">(B, N, c) tokens that attend.</param>
    /// <param name="keyValue">(B, M, c) tokens attended to.</param>
    public override Tensor forward(Tensor query, Tensor keyValue)
    {
        using var scope = NewDisposeScope();
        long batch = query.shape[0], length = query.shape[1], width = query.shape[2];
        Tensor Heads(Tensor t) => t.view(batch, t.shape[1], _heads, width / _heads).transpose(1, 2);
        var attended = nn.functional.scaled_dot_product_attention(
            Heads(to_q.forward(query)), Heads(to_k.forward(keyValue)), Heads(to_v.forward(keyValue)));
        var merged = attended.transpose(1, 2).reshape(batch, length, width);
        return to_out.forward(merged).MoveToOuterDisposeScope();
    }
}
