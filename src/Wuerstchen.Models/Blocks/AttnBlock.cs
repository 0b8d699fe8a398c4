using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>
/// Attention over image tokens with the condition appended to the keys and values (spec §1.6):
/// kv = [LN(x) tokens ; Linear(SiLU(cond))], x + Attention(LN(x) tokens, kv). The condition's part,
/// <see cref="MapCondition"/>, depends only on the text: a sampling loop computes it once and calls <see cref="Attend"/>.
/// </summary>
public sealed class AttnBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly WuerstchenLayerNorm norm;
    private readonly Attention attention;
    private readonly Sequential kv_mapper;
    private readonly bool _selfAttention;

    public AttnBlock(long c, long cCond, long heads, bool selfAttention = true, double dropout = 0, Device? device = null, ScalarType? dtype = null)
        : base(nameof(AttnBlock))
    {
        norm = new WuerstchenLayerNorm(c);
        attention = new Attention(c, heads, dropout, device, dtype);
        kv_mapper = nn.Sequential(nn.SiLU(), nn.Linear(cCond, c, device: device, dtype: dtype));
        _selfAttention = selfAttention;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor condition)
    {
        using var scope = NewDisposeScope();
        return Attend(x, MapCondition(condition)).MoveToOuterDisposeScope();
    }

    /// <summary>The condition's keys and values, <c>kv_mapper(condition)</c>: (B, L, c).</summary>
    public Tensor MapCondition(Tensor condition) => kv_mapper.forward(condition);

    /// <summary>The block with the condition already mapped by <see cref="MapCondition"/>.</summary>
    public Tensor Attend(Tensor x, Tensor mappedCondition)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3];
        var kv = mappedCondition;
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

    public Attention(long c, long heads, double dropout = 0, Device? device = null, ScalarType? dtype = null) : base(nameof(Attention))
    {
        if (heads <= 0 || c % heads != 0)
            throw new ArgumentException($"The attention width {c} must split evenly into {heads} heads.", nameof(heads));
        to_q = nn.Linear(c, c, device: device, dtype: dtype);
        to_k = nn.Linear(c, c, device: device, dtype: dtype);
        to_v = nn.Linear(c, c, device: device, dtype: dtype);
        to_out = nn.Sequential(nn.Linear(c, c, device: device, dtype: dtype), new SeededDropout(dropout));
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
