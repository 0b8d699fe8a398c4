using System.Text;
using System.Text.Json;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Bulk;

/// <summary>One line of a job's results manifest.</summary>
public sealed record BulkManifestEntry(int Index, string? Prompt, string? NegativePrompt, ulong? Seed, int? Width, int? Height,
    string Status, IReadOnlyList<string> Images, string? Error);

/// <summary>The totals of a job, written beside its manifest.</summary>
public sealed record BulkSummary(string JobId, int Total, int Succeeded, int Failed, int Rejected, string Manifest, int Cancelled = 0);

/// <summary>Where a bulk job's blobs live.</summary>
public static class BulkBlobs
{
    public static string Request(string jobId) => $"bulk/{jobId}/request.json";
    public static string Plan(string jobId) => $"bulk/{jobId}/plan.json";
    public static string Entries(string jobId) => $"bulk/{jobId}/entries.json";
    public static string Manifest(string jobId) => $"bulk/{jobId}/manifest.jsonl";
    public static string Summary(string jobId) => $"bulk/{jobId}/summary.json";
    public static string Rejected(string messageId) => $"bulk/rejected/{messageId}.json";
}

public static class BulkManifestWriter
{
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Rejected = "rejected";

    /// <summary>Its batch was cancelled on its own; the job went on.</summary>
    public const string Cancelled = "cancelled";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Writes the manifest (JSONL, one line per prompt in job order) and the summary, each atomically.</summary>
    public static async Task<BulkSummary> WriteAsync(IBlobStore store, string jobId, IReadOnlyList<BulkManifestEntry> entries, CancellationToken cancellationToken)
    {
        var text = new StringBuilder();
        foreach (var entry in entries.OrderBy(e => e.Index))
            text.Append(JsonSerializer.Serialize(entry, Json)).Append('\n');
        using (var manifest = new MemoryStream(Encoding.UTF8.GetBytes(text.ToString())))
            await store.WriteAsync(BulkBlobs.Manifest(jobId), manifest, new BlobWriteOptions { ContentType = "application/x-ndjson" }, cancellationToken).ConfigureAwait(false);

        var summary = new BulkSummary(jobId, entries.Count,
            entries.Count(e => e.Status == Succeeded), entries.Count(e => e.Status == Failed), entries.Count(e => e.Status == Rejected),
            BulkBlobs.Manifest(jobId), entries.Count(e => e.Status == Cancelled));
        using (var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(summary, Json)))
            await store.WriteAsync(BulkBlobs.Summary(jobId), content, new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
        return summary;
    }

    public static async Task<IReadOnlyList<BulkManifestEntry>> ReadAsync(IBlobStore store, string jobId, CancellationToken cancellationToken)
    {
        await using var stream = await store.OpenReadAsync(BulkBlobs.Manifest(jobId), cancellationToken).ConfigureAwait(false);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var entries = new List<BulkManifestEntry>();
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { Length: > 0 } line)
            entries.Add(JsonSerializer.Deserialize<BulkManifestEntry>(line, Json)!);
        return entries;
    }
}
