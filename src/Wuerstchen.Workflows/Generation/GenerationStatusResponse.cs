using Wuerstchen.Pipeline.Generation;

namespace Wuerstchen.Workflows.Generation;

/// <summary>The JSON a client sees for a generation: the status route's answer, and the body of its webhook.</summary>
public sealed record GenerationStatusResponse(
    string Id,
    string Status,
    string? Stage,
    StageProgress? Progress,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt,
    string? Error,
    IReadOnlyList<string> Images,
    GenerationBatch? Recipe)
{
    /// <param name="apiBase">The API's root as the client reached it, <c>{scheme}://{host}/api/</c>; image links start with it.</param>
    public static GenerationStatusResponse From(GenerationStatus status, string apiBase) => new(
        status.GenerationId,
        status.RuntimeStatus,
        status.Stage,
        status.Progress,
        status.CreatedAt,
        status.LastUpdatedAt,
        status.Error,
        Enumerable.Range(0, status.Result?.Images.Count ?? 0)
            .Select(i => $"{StatusUrl(apiBase, status.GenerationId)}/images/{i}").ToArray(),
        status.Batch);

    public static string StatusUrl(string apiBase, string id) => $"{apiBase}generations/{id}";
}
