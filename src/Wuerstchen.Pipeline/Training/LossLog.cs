using System.Text;
using System.Text.Json;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// The run's loss and learning-rate points, one JSON line per optimiser step (<c>training/runs/{run}/loss.jsonl</c>).
/// Appending a chunk's points first drops any points from the chunk's start (or its first point) on, so a chunk that
/// writes its points as it goes, or is run again (after a crash, or from an older checkpoint), leaves each step once.
/// </summary>
public static class LossLog
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull };

    public static async Task AppendAsync(IBlobStore store, string runId, int fromStep, IReadOnlyList<LossPoint> points, CancellationToken cancellationToken)
    {
        int firstNew = points.Count > 0 ? Math.Min(points[0].Step, fromStep + 1) : fromStep + 1;
        var kept = (await ReadAsync(store, runId, cancellationToken).ConfigureAwait(false)).Where(p => p.Step < firstNew).Concat(points);
        var text = new StringBuilder();
        foreach (var point in kept)
            text.Append(JsonSerializer.Serialize(point, Json)).Append('\n');
        using var content = new MemoryStream(Encoding.UTF8.GetBytes(text.ToString()));
        await store.WriteAsync(TrainingBlobs.LossLog(runId), content, new BlobWriteOptions { ContentType = "application/x-ndjson" }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every point, in step order; a log replaced while it is read (a running chunk writes it) is read again.</summary>
    public static Task<IReadOnlyList<LossPoint>> ReadAsync(IBlobStore store, string runId, CancellationToken cancellationToken) =>
        BlobReads.RetryWhileReplacedAsync(() => ReadOnceAsync(store, runId, cancellationToken), cancellationToken);

    private static async Task<IReadOnlyList<LossPoint>> ReadOnceAsync(IBlobStore store, string runId, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await store.OpenReadAsync(TrainingBlobs.LossLog(runId), cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            var points = new List<LossPoint>();
            while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
            {
                if (line.Length > 0 && JsonSerializer.Deserialize<LossPoint>(line, Json) is { } point)
                    points.Add(point);
            }
            return points;
        }
        catch (BlobNotFoundException)
        {
            return [];
        }
    }
}
