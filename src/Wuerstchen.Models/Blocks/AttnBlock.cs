using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>
/// Attention over image tokens with the condition appended to the keys and values (upstream: modeling_wuerstchen_common.py, AttnBlock):
/// kv = [LN(x) tokens ; Linear(SiLU(cond))], x + Attention(LN(x) tokens, kv). The condition's part, its keys and values
/// (<see cref="MapCondition"/>), depends only on the text: a sampling loop computes it once per generation and calls
/// <see cref="Attend"/> each step, which projects only the image tokens.
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

    /// <summary>The condition's keys and values: <c>to_k</c> and <c>to_v</c> of <c>kv_mapper(condition)</c>, each (B, L, c).</summary>
    public KeyValues MapCondition(Tensor condition)
    {
        using var mapped = kv_mapper.forward(condition);
        return attention.Project(mapped);
    }

    /// <summary>The block with the condition already mapped by <see cref="MapCondition"/>.</summary>
    public Tensor Attend(Tensor x, KeyValues condition)
    {
        using var scope = NewDisposeScope();
        long[] shape = x.shape;
        long batch = shape[0], channels = shape[1], height = shape[2], width = shape[3];
        // (B, H·W, C) tokens straight from the channels-last norm; the result goes back to NCHW as a view.
        var tokens = norm.ChannelsLast(x).view(batch, height * width, channels);
        var attended = attention.Attend(tokens, condition, _selfAttention).view(batch, height, width, channels).permute(0, 3, 1, 2);
        return attended.add_(x).MoveToOuterDisposeScope(); // into the projection's fresh output (its backward does not need it)
    }
}

/// <summary>Projected keys and values, (B, L, c) each.</summary>
public sealed record KeyValues(Tensor Keys, Tensor Values);

/// <summary>diffusers' <c>Attention</c> as Würstchen uses it: biased q/k/v projections, no mask, scale head_dim^-½ (upstream: attention_processor.py, Attention and AttnProcessor2_0).</summary>
public sealed class Attention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear to_q;
    private readonly Linear to_k;
    private readonly Linear to_v;
    private readonly OutputProjection to_out;
    private readonly long _heads;

    public Attention(long c, long heads, double dropout = 0, Device? device = null, ScalarType? dtype = null) : base(nameof(Attention))
    {
        if (heads <= 0 || c % heads != 0)
            throw new ArgumentException($"The attention width {c} must split evenly into {heads} heads.", nameof(heads));
        to_q = nn.Linear(c, c, device: device, dtype: dtype);
        to_k = nn.Linear(c, c, device: device, dtype: dtype);
        to_v = nn.Linear(c, c, device: device, dtype: dtype);
        to_out = new OutputProjection(c, dropout, device, dtype);
        _heads = heads;
        RegisterComponents();
    }

    /// <param name="query">(B, N, c) tokens that attend.</param>
    /// <param name="keyValue">(B, M, c) tokens attended to.</param>
    public override Tensor forward(Tensor query, Tensor keyValue)
    {
        using var scope = NewDisposeScope();
        return Attend(query, Project(keyValue), selfAttention: false).MoveToOuterDisposeScope();
    }

    /// <summary>The keys and values of <paramref name="keyValue"/> (B, M, c): <c>to_k</c> and <c>to_v</c>, row by row.</summary>
    public KeyValues Project(Tensor keyValue) => new(to_k.forward(keyValue), to_v.forward(keyValue));

    /// <summary>
    /// Attention of <paramref name="query"/> over <paramref name="projected"/>'s keys and values, preceded by the query
    /// tokens' own when <paramref name="selfAttention"/>: the projections are row-wise, so projecting [tokens ; condition]
    /// equals joining the projections of each.
    /// </summary>
    public Tensor Attend(Tensor query, KeyValues projected, bool selfAttention)
    {
        using var scope = NewDisposeScope();
        long[] shape = query.shape;
        long batch = shape[0], length = shape[1], width = shape[2];
        Tensor Heads(Tensor t) => t.view(batch, -1, _heads, width / _heads).transpose(1, 2);
        var keys = selfAttention ? cat([to_k.forward(query), projected.Keys], dim: 1) : projected.Keys;
        var values = selfAttention ? cat([to_v.forward(query), projected.Values], dim: 1) : projected.Values;
        var attended = nn.functional.scaled_dot_product_attention(Heads(to_q.forward(query)), Heads(keys), Heads(values));
        var merged = attended.transpose(1, 2).reshape(batch, length, width);
        return to_out.forward(merged).MoveToOuterDisposeScope();
    }
}

/// <summary>diffusers' <c>to_out</c>: <c>nn.ModuleList([Linear, Dropout])</c>, keys <c>0</c> and <c>1</c>; no dropout call in inference.</summary>
internal sealed class OutputProjection : nn.Module<Tensor, Tensor>
{
    [ComponentName(Name = "0")]
    private readonly Linear linear;

    [ComponentName(Name = "1")]
    private readonly SeededDropout dropout;

    public OutputProjection(long c, double dropoutProbability, Device? device, ScalarType? dtype) : base(nameof(OutputProjection))
    {
        linear = nn.Linear(c, c, device: device, dtype: dtype);
        dropout = new SeededDropout(dropoutProbability);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        if (!dropout.training)
            return linear.forward(x);
        using var projected = linear.forward(x);
        return dropout.forward(projected);
    }
}
