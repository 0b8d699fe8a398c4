using System.IO.Compression;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Api;

/// <summary>
/// The bulk routes' handlers, host-neutral: submit a job (the queue's intake, answered by field), follow it, and fetch
/// its manifest, an image or all of them as a zip. Requests that name no model get the host's defaults, as generations do.
/// </summary>
public sealed class BulkApi(BulkService bulk, IBlobStore store, IOptions<ApiOptions> options)
{
    public async Task<IActionResult> Start(
        HttpRequest request,
        DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        var (body, bodyError) = await HttpResults.ReadBodyAsync<JsonObject>(request, options.Value.MaxBodyBytes, cancellationToken);
        if (bodyError is not null)
            return bodyError;
        if (body is null)
            return HttpResults.Invalid("body", "Send a JSON object with prompts (and optionally jobId and settings).");
        if (body["settings"] is not JsonObject settings)
            body["settings"] = settings = [];
        if (options.Value.DefaultPriorModel is { Length: > 0 } prior && !settings.ContainsKey("priorModel"))
            settings["priorModel"] = prior;
        if (options.Value.DefaultDecoderModel is { Length: > 0 } decoder && !settings.ContainsKey("decoderModel"))
            settings["decoderModel"] = decoder;
        var outcome = await bulk.StartAsync(client, body, cancellationToken, HttpResults.ApiBase(request));
        switch (outcome.Disposition)
        {
            case StartDisposition.Invalid:
                return HttpResults.Invalid(outcome.Errors!);
            case StartDisposition.Conflict:
                return HttpResults.Problem(StatusCodes.Status409Conflict, outcome.Errors!["jobId"][0]);
        }
        string url = StatusUrl(request, outcome.JobId!);
        request.HttpContext.Response.Headers.RetryAfter = "2";
        return new AcceptedResult(url, new { id = outcome.JobId, statusUrl = url, existing = outcome.Disposition == StartDisposition.Existing });
    }

    public async Task<IActionResult> Get(
        HttpRequest request,
        DurableTaskClient client,
        string jobId,
        CancellationToken cancellationToken)
    {
        var status = await bulk.GetStatusAsync(client, jobId, cancellationToken);
        return status is null ? NotFound(jobId) : new OkObjectResult(BulkStatusResponse.From(status, HttpResults.ApiBase(request)));
    }

    public async Task<IActionResult> GetManifest(
        HttpRequest request,
        string jobId,
        CancellationToken cancellationToken)
    {
        if (!GenerationService.IsWellFormedId(jobId) || !await store.ExistsAsync(BulkBlobs.Manifest(jobId), cancellationToken))
            return NoManifest(jobId);
        return new FileStreamResult(await store.OpenReadAsync(BulkBlobs.Manifest(jobId), cancellationToken), "application/x-ndjson")
        {
            FileDownloadName = $"{jobId}-manifest.jsonl",
        };
    }

    public async Task<IActionResult> GetImage(
        HttpRequest request,
        string jobId,
        int index,
        int n,
        CancellationToken cancellationToken)
    {
        var manifest = await bulk.ManifestAsync(jobId, cancellationToken);
        var entry = manifest?.FirstOrDefault(e => e.Index == index);
        if (entry is null || n < 0 || n >= entry.Images.Count)
            return HttpResults.Problem(StatusCodes.Status404NotFound, $"Bulk job '{jobId}' has no image {n} of prompt {index} (unknown, not finished, or out of range).");
        return await HttpResults.PngAsync(store, entry.Images[n], options.Value, $"{jobId}-{index}-{n}.png", cancellationToken);
    }

    public async Task<IActionResult> GetZip(
        HttpRequest request,
        string jobId,
        CancellationToken cancellationToken)
    {
        var manifest = await bulk.ManifestAsync(jobId, cancellationToken);
        return manifest is null ? NoManifest(jobId) : new BulkZipResult(store, jobId, manifest);
    }

    internal static string StatusUrl(HttpRequest request, string jobId) => BulkStatusResponse.StatusUrl(HttpResults.ApiBase(request), jobId);

    private static ObjectResult NotFound(string jobId) => HttpResults.Problem(StatusCodes.Status404NotFound, $"Bulk job '{jobId}' does not exist.");

    private static ObjectResult NoManifest(string jobId) =>
        HttpResults.Problem(StatusCodes.Status404NotFound, $"Bulk job '{jobId}' has no manifest (unknown, or not finished yet).");
}

/// <summary>
/// The job's images and its manifest as one zip (images stored, not compressed again: PNGs are compressed already).
/// Image names follow the manifest: <c>{index:D5}-{n}.png</c>. The zip is built in a temporary file first, so the
/// response carries its length, and a blob that cannot be read fails the request before any of it is sent rather than
/// ending a 200 with a zip that silently lacks the rest.
/// </summary>
public sealed class BulkZipResult(IBlobStore store, string jobId, IReadOnlyList<BulkManifestEntry> manifest) : IActionResult
{
    public static string EntryName(int index, int n) => $"{index:D5}-{n}.png";

    public async Task ExecuteResultAsync(ActionContext context)
    {
        var response = context.HttpContext.Response;
        var token = context.HttpContext.RequestAborted;
        await using var buffer = new FileStream(Path.Combine(Path.GetTempPath(), $"wuerstchen-zip-{Guid.NewGuid():N}.zip"), FileMode.CreateNew,
            FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose | FileOptions.Asynchronous);
        await WriteAsync(buffer, token);
        buffer.Position = 0;
        response.ContentType = "application/zip";
        response.ContentLength = buffer.Length;
        response.Headers.ContentDisposition = $"attachment; filename=\"{jobId}.zip\"";
        await buffer.CopyToAsync(response.Body, token);
    }

    /// <summary>Writes the zip to <paramref name="destination"/>.</summary>
    public async Task WriteAsync(Stream destination, CancellationToken cancellationToken)
    {
        await using var zip = new ZipArchive(destination, ZipArchiveMode.Create, leaveOpen: true);
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var lines = new System.Text.StringBuilder();
        foreach (var entry in manifest.OrderBy(e => e.Index))
        {
            var files = new List<string>();
            for (int n = 0; n < entry.Images.Count; n++)
            {
                string name = EntryName(entry.Index, n);
                await using (var source = await store.OpenReadAsync(entry.Images[n], cancellationToken))
                await using (var target = await zip.CreateEntry(name, CompressionLevel.NoCompression).OpenAsync(cancellationToken))
                    await source.CopyToAsync(target, cancellationToken);
                files.Add(name);
            }
            lines.Append(JsonSerializer.Serialize(entry with { Images = files }, json)).Append('\n');
        }
        await using (var target = await zip.CreateEntry("manifest.jsonl", CompressionLevel.Optimal).OpenAsync(cancellationToken))
            await target.WriteAsync(System.Text.Encoding.UTF8.GetBytes(lines.ToString()), cancellationToken);
    }
}

/// <summary>
/// The body of <c>POST /api/bulk</c>, for the API description: the queue message's fields with the prompts inline, each a
/// string or an object (<c>prompt</c>, <c>negativePrompt</c>, <c>seed</c>, <c>width</c>, <c>height</c>). Read as JSON
/// and checked by the queue's own parser.
/// </summary>
public sealed record BulkJobRequest(string? JobId, Wuerstchen.Pipeline.Generation.GenerationRequest? Settings, IReadOnlyList<JsonElement> Prompts);
