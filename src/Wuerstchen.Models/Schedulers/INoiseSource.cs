using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Schedulers;

/// <summary>Where a sampling loop gets its Gaussian noise: the initial latents first, then one draw per step.</summary>
public interface INoiseSource
{
    Tensor Randn(long[] shape, ScalarType dtype, Device device);
}
