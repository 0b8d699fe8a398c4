using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Schedulers;

/// <summary>
/// Noise for a batch whose items each own a seeded stream: every draw of shape (Σ rows, …) is the concatenation of
/// each item's draw of its own rows. An item's images are therefore the same alone or in any batch, and a batch of one
/// item draws exactly what the reference pipeline draws with a generator seeded the same way.
/// </summary>
public sealed class ItemwiseNoise : INoiseSource, IDisposable
{
    private readonly SeededNoise[] _streams;
    private readonly int _rowsPerItem;

    public ItemwiseNoise(IEnumerable<ulong> seeds, int rowsPerItem)
    {
        _streams = seeds.Select(s => new SeededNoise(s)).ToArray();
        _rowsPerItem = rowsPerItem;
        if (_streams.Length == 0 || rowsPerItem < 1)
            throw new ArgumentException("At least one item with at least one row is needed.");
    }

    public Tensor Randn(long[] shape, ScalarType dtype, Device device)
    {
        CheckRows(shape);
        if (_streams.Length == 1)
            return _streams[0].Randn(shape, dtype, device);
        using var scope = NewDisposeScope();
        long[] itemShape = [_rowsPerItem, .. shape[1..]];
        var parts = _streams.Select(s => s.Randn(itemShape, dtype, device)).ToArray();
        return cat(parts).MoveToOuterDisposeScope();
    }

    /// <summary>Every draw of a stage at once: each item's stream draws its rows of every step, items in parallel, one copy to the device.</summary>
    public Tensor RandnSequence(int count, long[] shape, ScalarType dtype, Device device)
    {
        CheckRows(shape);
        return SeededNoise.DrawSequence(_streams, _rowsPerItem, count, shape, dtype, device);
    }

    private void CheckRows(long[] shape)
    {
        long expected = (long)_streams.Length * _rowsPerItem;
        if (shape[0] != expected)
            throw new ArgumentException($"A draw of {shape[0]} rows was asked of {_streams.Length} items × {_rowsPerItem} rows.", nameof(shape));
    }

    public void Dispose()
    {
        foreach (var stream in _streams)
            stream.Dispose();
    }
}
