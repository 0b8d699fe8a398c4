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
    private readonly long[] _rows;

    public ItemwiseNoise(IEnumerable<ulong> seeds, int rowsPerItem)
        : this(seeds.Select(seed => (seed, rowsPerItem)))
    {
    }

    /// <summary>Items with their own row counts (a batch mixing images-per-prompt): item i owns the next <c>Rows</c> rows.</summary>
    public ItemwiseNoise(IEnumerable<(ulong Seed, int Rows)> items)
    {
        var list = items.ToArray();
        if (list.Length == 0 || list.Any(i => i.Rows < 1))
            throw new ArgumentException("At least one item with at least one row is needed.");
        _streams = list.Select(i => new SeededNoise(i.Seed)).ToArray();
        _rows = list.Select(i => (long)i.Rows).ToArray();
    }

    public Tensor Randn(long[] shape, ScalarType dtype, Device device)
    {
        CheckRows(shape);
        if (_streams.Length == 1)
            return _streams[0].Randn(shape, dtype, device);
        using var scope = NewDisposeScope();
        var parts = _streams.Select((s, i) => s.Randn([_rows[i], .. shape[1..]], dtype, device)).ToArray();
        return cat(parts).MoveToOuterDisposeScope();
    }

    /// <summary>Every draw of a stage at once: each item's stream draws its rows of every step, items in parallel, one copy to the device.</summary>
    public Tensor RandnSequence(int count, long[] shape, ScalarType dtype, Device device)
    {
        CheckRows(shape);
        return SeededNoise.DrawSequence(_streams, _rows, count, shape, dtype, device);
    }

    private void CheckRows(long[] shape)
    {
        long expected = _rows.Sum();
        if (shape[0] != expected)
            throw new ArgumentException($"A draw of {shape[0]} rows was asked of {_streams.Length} items with {expected} rows in all.", nameof(shape));
    }

    public void Dispose()
    {
        foreach (var stream in _streams)
            stream.Dispose();
    }
}
