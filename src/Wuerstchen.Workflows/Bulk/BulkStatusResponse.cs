using Wuerstchen.Pipeline.Bulk;

namespace Wuerstchen.Workflows.Bulk;

/// <summary>
/// The JSON a client sees for a bulk job: the status route's answer, and the body of its webhook. Once completed, each
/// manifest line carries links to its images.
/// </summary>
public sealed record BulkStatusResponse(string Id, string Status, int CompletedBatches, int TotalBatches, IReadOnlyList<string> Batches,
    BulkSummary? Summary, IReadOnlyList<BulkResultResponse>? Results, string? ManifestUrl, string? ZipUrl, string? Error,
    DateTimeOffset CreatedAt, DateTimeOffset LastUpdatedAt)
{
    /// <param name="apiBase">The API's root as the client reached it, <c>{scheme}://{host}/api/</c>; links start with it.</param>
    public static BulkStatusResponse From(BulkJobStatus status, string apiBase)
    {
        string url = StatusUrl(apiBase, status.JobId);
        var results = status.Manifest?.Select(e => new BulkResultResponse(e.Index, e.Prompt, e.NegativePrompt, e.Seed, e.Width, e.Height, e.Status,
            Enumerable.Range(0, e.Images.Count).Select(n => $"{url}/images/{e.Index}/{n}").ToArray(), e.Error)).ToArray();
        bool done = status.Manifest is not null;
        return new(status.JobId, status.RuntimeStatus, status.CompletedBatches, status.TotalBatches, status.Batches, status.Summary, results,
            done ? url + "/manifest" : null, done ? url + "/zip" : null, status.Error, status.CreatedAt, status.LastUpdatedAt);
    }

    public static string StatusUrl(string apiBase, string jobId) => $"{apiBase}bulk/{jobId}";
}

public sealed record BulkResultResponse(int Index, string? Prompt, string? NegativePrompt, ulong? Seed, int? Width, int? Height, string Status,
    IReadOnlyList<string> Images, string? Error);
