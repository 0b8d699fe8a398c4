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

    /// <inheritdoc cref="INoiseSource.RandnSequence"/>
    public Tensor RandnSequence(int count, long[] shape, ScalarType dtype, Device device) =>
        DrawSequence([this], shape[0], count, shape, dtype, device);

    /// <summary>
    /// The draws of a batch whose row blocks each own a stream: draw d of stream s fills rows [s·rows, (s+1)·rows) of
    /// slice d, exactly what <paramref name="count"/> successive <c>randn((rows, …), generator)</c> calls of that stream
    /// give (<c>randn</c> is <c>empty(…).normal_(0, 1, generator)</c>, and each block is a contiguous tensor of the same
    /// shape). Streams draw in parallel. For a GPU they draw into one page-locked host buffer, which then makes one
    /// non-blocking copy; the device buffer is allocated first, so a request too large for the device fails there,
    /// before any host memory is touched.
    /// </summary>
    public static Tensor DrawSequence(IReadOnlyList<SeededNoise> streams, long rowsPerStream, int count, long[] shape, ScalarType dtype, Device device) =>
        DrawSequence(streams, Enumerable.Repeat(rowsPerStream, streams.Count).ToArray(), count, shape, dtype, device);

    /// <summary>As above, with stream s owning the next <c>rowsOfStream[s]</c> rows (items of a batch with different image counts).</summary>
    public static Tensor DrawSequence(IReadOnlyList<SeededNoise> streams, IReadOnlyList<long> rowsOfStream, int count, long[] shape, ScalarType dtype, Device device)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        if (rowsOfStream.Count != streams.Count || shape.Length == 0 || shape[0] != rowsOfStream.Sum())
            throw new ArgumentException($"A draw of [{string.Join(", ", shape)}] was asked of {streams.Count} streams with {rowsOfStream.Sum()} rows in all.", nameof(shape));
        long[] sequenceShape = [count, .. shape];
        var destination = empty(sequenceShape, dtype, device);
        try
        {
            if (device.type == DeviceType.CPU)
            {
                Fill(destination, streams, rowsOfStream);
                return destination;
            }
            using var pageable = empty(sequenceShape, dtype);
            using var host = device.type == DeviceType.CUDA ? pageable.pin_memory() : pageable.alias();
            Fill(host, streams, rowsOfStream);
            // The caching host allocator keeps the pinned block until the copy's stream has passed it.
            destination.copy_(host, nonBlocking: true);
            return destination;
        }
        catch
        {
            destination.Dispose();
            throw;
        }
    }

    private static void Fill(Tensor sequence, IReadOnlyList<SeededNoise> streams, IReadOnlyList<long> rowsOfStream)
    {
        long count = sequence.shape[0];
        var firstRow = new long[streams.Count];
        for (int s = 1; s < streams.Count; s++)
            firstRow[s] = firstRow[s - 1] + rowsOfStream[s - 1];
        // Inference mode is per thread: a buffer made under it may only be written under it, on the workers too.
        bool inference = is_inference_mode_enabled();
        Parallel.For(0, streams.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(streams.Count, Environment.ProcessorCount) }, s =>
        {
            using var mode = inference ? inference_mode() : null;
            for (long d = 0; d < count; d++)
            {
                using var draw = sequence[d];
                using var rows = draw.narrow(0, firstRow[s], rowsOfStream[s]);
                rows.normal_(0, 1, streams[s].Generator);
            }
        });
    }

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
