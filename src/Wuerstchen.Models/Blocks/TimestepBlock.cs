using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>Modulates features by the ratio embedding: x·(1 + a) + b with [a, b] = mapper(r_embed) (upstream: modeling_wuerstchen_common.py, TimestepBlock).</summary>
public sealed class TimestepBlock : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear mapper;

    public TimestepBlock(long c, long cTimestep, Device? device = null, ScalarType? dtype = null) : base(nameof(TimestepBlock))
    {
        mapper = nn.Linear(cTimestep, c * 2, device: device, dtype: dtype);
        RegisterComponents();
    }

    internal Linear Mapper => mapper;

    public override Tensor forward(Tensor x, Tensor rEmbed)
    {
        using var scope = NewDisposeScope();
        var ab = mapper.forward(rEmbed)[.., .., TensorIndex.None, TensorIndex.None].chunk(2, dim: 1);
        return (x * (1 + ab[0]) + ab[1]).MoveToOuterDisposeScope();
    }

    /// <summary><c>x·scale + shift</c> with scale = 1 + a and shift = b from <see cref="TimestepModulation"/>: the same operations as <see cref="forward"/>.</summary>
    public static Tensor Modulate(Tensor x, Tensor scale, Tensor shift)
    {
        var scaled = x * scale;
        return scaled.add_(shift);
    }
}

/// <summary>
/// Every <see cref="TimestepBlock"/> of a model mapped as one product per step: their mappers' weights stacked once per
/// generation, so a step makes one matrix product for all of them (32 in Stage C, 52 in Stage B) instead of one each.
/// Each block then takes its 1 + a and b as views.
/// </summary>
public sealed class TimestepModulation
{
    private static readonly Scalar One = 1.ToScalar();

    private readonly Tensor _weight;
    private readonly Tensor _bias;
    private readonly Dictionary<TimestepBlock, (long Offset, long Channels)> _slices = new(ReferenceEqualityComparer.Instance);

    private TimestepModulation(Tensor weight, Tensor bias, IEnumerable<(TimestepBlock Block, long Offset, long Channels)> slices)
    {
        _weight = weight;
        _bias = bias;
        foreach (var (block, offset, channels) in slices)
            _slices[block] = (offset, channels);
    }

    /// <summary>Stacks the blocks' mapper weights (the caller's dispose scope owns them).</summary>
    public static TimestepModulation Of(IReadOnlyList<TimestepBlock> blocks)
    {
        var slices = new List<(TimestepBlock, long, long)>();
        long offset = 0;
        foreach (var block in blocks)
        {
            long width = block.Mapper.weight.shape[0];
            slices.Add((block, offset, width / 2));
            offset += width;
        }
        var weight = cat(blocks.Select(b => (Tensor)b.Mapper.weight).ToArray());
        var bias = cat(blocks.Select(b => b.Mapper.bias ?? throw new InvalidOperationException("A timestep mapper has no bias.")).Cast<Tensor>().ToArray());
        return new TimestepModulation(weight, bias, slices);
    }

    /// <summary>One step's modulation for every block, from the step's ratio embedding (B, c_r).</summary>
    public StepModulation Map(Tensor rEmbed)
    {
        var mapped = nn.functional.linear(rEmbed, _weight, _bias)[.., .., TensorIndex.None, TensorIndex.None];
        return new StepModulation(mapped.add(One), mapped, _slices);
    }

    public sealed class StepModulation
    {
        private readonly Tensor _onePlus;
        private readonly Tensor _mapped;
        private readonly Dictionary<TimestepBlock, (long Offset, long Channels)> _slices;

        internal StepModulation(Tensor onePlus, Tensor mapped, Dictionary<TimestepBlock, (long Offset, long Channels)> slices)
        {
            _onePlus = onePlus;
            _mapped = mapped;
            _slices = slices;
        }

        /// <summary>Block <paramref name="block"/>'s <c>x·(1 + a) + b</c>.</summary>
        public Tensor Apply(TimestepBlock block, Tensor x)
        {
            var (offset, channels) = _slices[block];
            using var scale = _onePlus.narrow(1, offset, channels);
            using var shift = _mapped.narrow(1, offset + channels, channels);
            return TimestepBlock.Modulate(x, scale, shift);
        }
    }
}
