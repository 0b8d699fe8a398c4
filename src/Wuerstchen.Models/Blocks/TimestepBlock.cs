using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>Modulates features by the ratio embedding: x·(1 + a) + b with [a, b] = mapper(r_embed) (spec §1.2).</summary>
public sealed class TimestepBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear mapper;

    public TimestepBlock(long c, long cTimestep, Device? device = null, ScalarType? dtype = null) : base(nameof(TimestepBlock))
    {
        mapper = nn.Linear(cTimestep, c * 2, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor rEmbed)
    {
        using var scope = NewDisposeScope();
        var ab = mapper.forward(rEmbed)[.., .., TensorIndex.None, TensorIndex.None].chunk(2, dim: 1);
        return (x * (1 + ab[0]) + ab[1]).MoveToOuterDisposeScope();
    }
}
