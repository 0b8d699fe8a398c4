using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Schedulers;

/// <summary>Where a sampling loop gets its Gaussian noise: the initial latents first, then one draw per step.</summary>
public interface INoiseSource
{
    Tensor Randn(long[] shape, ScalarType dtype, Device device);

    /// <summary>
    /// <paramref name="count"/> successive draws of <paramref name="shape"/>, stacked as (count, …shape) on
    /// <paramref name="device"/>: the same numbers as <paramref name="count"/> calls of <see cref="Randn"/>. A sampling loop
    /// draws its whole stage up front, so that no step waits for the host. Seeded sources draw all of it on the host
    /// and make one copy; this default draws one call at a time.
    /// </summary>
    Tensor RandnSequence(int count, long[] shape, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        var draws = Enumerable.Range(0, count).Select(_ => Randn(shape, dtype, device)).ToArray();
        return stack(draws).MoveToOuterDisposeScope();
    }
}
