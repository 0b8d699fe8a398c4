using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>
/// Dropout that draws its masks from a generator the caller installs for the current thread (<see cref="Use"/>), so a
/// training run that stores that generator's state in its checkpoints resumes bit for bit. Without an installed
/// generator it is <c>nn.Dropout</c> (libtorch's global generator). Identity in eval mode. It has no parameters or
/// buffers, so checkpoint keys are the same as with <c>nn.Dropout</c>.
/// </summary>
public sealed class SeededDropout : nn.Module<Tensor, Tensor>
{
    [ThreadStatic]
    private static Generator? t_generator;

    public SeededDropout(double probability) : base(nameof(SeededDropout))
    {
        if (probability is < 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "The dropout probability must lie in [0, 1).");
        Probability = probability;
        RegisterComponents();
    }

    public double Probability { get; }

    /// <summary>
    /// Makes every <see cref="SeededDropout"/> on this thread draw from <paramref name="generator"/> until the result is
    /// disposed. The generator must be on the device the activations are on.
    /// </summary>
    public static IDisposable Use(Generator generator)
    {
        var previous = t_generator;
        t_generator = generator;
        return new Restore(previous);
    }

    public override Tensor forward(Tensor input)
    {
        if (!training || Probability == 0)
            return input.alias();
        if (t_generator is not { } generator)
            return nn.functional.dropout(input, Probability, training: true);
        using var scope = NewDisposeScope();
        var keep = rand(input.shape, dtype: ScalarType.Float32, device: input.device, generator: generator).ge(Probability);
        return (input * keep.to(input.dtype) / (1 - Probability)).MoveToOuterDisposeScope();
    }

    private sealed class Restore(Generator? previous) : IDisposable
    {
        public void Dispose() => t_generator = previous;
    }
}
