using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Schedulers;

/// <summary>
/// A seeded CPU random stream. It is libtorch's CPU generator, so a seed gives the same numbers as
/// <c>torch.Generator().manual_seed(seed)</c> in PyTorch; draws happen on the CPU and move to the target device,
/// which keeps a seeded image the same on every device.
/// </summary>
public sealed class SeededNoise : INoiseSource, IDisposable
{
    public SeededNoise(ulong seed)
    {
        Seed = seed;
        Generator = new Generator(seed, CPU);
    }

    public ulong Seed { get; }

    public Generator Generator { get; }

    /// <summary>Standard normal noise of <paramref name="shape"/>, drawn in <paramref name="dtype"/> as the reference's <c>randn_tensor</c> does.</summary>
    public Tensor Randn(long[] shape, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var noise = randn(shape, dtype: dtype, generator: Generator);
        if (device is null || device.type == DeviceType.CPU)
            return noise;
        using (noise)
            return noise.to(device);
    }

    Tensor INoiseSource.Randn(long[] shape, ScalarType dtype, Device device) => Randn(shape, dtype, device);

    /// <summary>Uniform [0, 1) noise of <paramref name="shape"/>.</summary>
    public Tensor Rand(long[] shape, ScalarType dtype = ScalarType.Float32) => rand(shape, dtype: dtype, generator: Generator);

    /// <summary>The generator's full state, to store in a checkpoint and resume the same stream later.</summary>
    public byte[] GetState()
    {
        using var state = Generator.get_state();
        return state.data<byte>().ToArray();
    }

    public void SetState(byte[] state)
    {
        using var tensor = torch.tensor(state, dtype: ScalarType.Byte);
        Generator.set_state(tensor);
    }

    public void Dispose() => Generator.Dispose();
}
