using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Generation;

/// <summary>The generation HTTP API: start, status, images, re-decode, cancel. Thin: <see cref="GenerationService"/> does the work.</summary>
public sealed class GenerationHttpFunctions(GenerationService generations, GenerationGallery gallery, IBlobStore store, IOptions<ApiOptions> options)
{
    public const string IdempotencyHeader = "Idempotency-Key";
    private const int MaxIdempotencyKeyLength = 200;

    [Function("StartGeneration")]
    public async Task<IActionResult> Start(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "generations")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        var (body, bodyError) = await HttpResults.ReadBodyAsync<GenerationRequest>(request, options.Value.MaxBodyBytes, cancellationToken);
        if (bodyError is not null)
            return bodyError;
        if (!TryReadIdempotencyKey(request, out string? key, out var keyError))
            return keyError!;
        if (!TryReadWait(request, out var wait, out var waitError))
            return waitError!;

        var outcome = await generations.StartAsync(client, body, key, cancellationToken);
        return await AcceptedOrDoneAsync(request, client, outcome, wait, cancellationToken);
    }

    [Function("ListGenerations")]
    public async Task<IActionResult> List(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "generations")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        string? limitText = request.Query["limit"].FirstOrDefault();
        int limit = GenerationGallery.DefaultLimit;
        if (limitText is not null && !int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit))
            return HttpResults.Invalid("limit", $"'{limitText}' is not a whole number in 1 … {GenerationGallery.MaxLimit}.");
        var query = new GalleryQuery(limit, request.Query["continuationToken"].FirstOrDefault(), request.Query["model"].FirstOrDefault(), request.Query["q"].FirstOrDefault());
        var problems = GenerationGallery.Problems(query);
        if (problems.Count > 0)
            return HttpResults.Invalid(problems);
        var page = await gallery.ListAsync(client, query, cancellationToken);
        return new OkObjectResult(GenerationListResponse.From(page, query, request));
    }

    [Function("GetGeneration")]
    public async Task<IActionResult> Get(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "generations/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        var status = await generations.GetStatusAsync(client, id, cancellationToken);
        return status is null ? NotFound(id) : new OkObjectResult(GenerationStatusResponse.From(status, request));
    }

    [Function("GetGenerationImage")]
    public async Task<IActionResult> GetImage(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = "generations/{id}/images/{index:int}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        int index,
        CancellationToken cancellationToken)
    {
        string? blob = await generations.ImageBlobAsync(client, id, index, cancellationToken);
        if (blob is null)
            return Problem(StatusCodes.Status404NotFound, $"Generation '{id}' has no image {index} (unknown, not finished, or out of range).");
        return await HttpResults.PngAsync(store, blob, options.Value, $"{id}-{index}.png", cancellationToken);
    }

    [Function("RedecodeGeneration")]
    public async Task<IActionResult> Redecode(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = "generations/{id}/redecode")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        var (body, bodyError) = await HttpResults.ReadBodyAsync<RedecodeRequest>(request, options.Value.MaxBodyBytes, cancellationToken, allowEmpty: true);
        if (bodyError is not null)
            return bodyError;
        if (!TryReadIdempotencyKey(request, out string? key, out var keyError))
            return keyError!;
        var outcome = await generations.RedecodeAsync(client, id, body, key, cancellationToken);
        return await AcceptedOrDoneAsync(request, client, outcome, TimeSpan.Zero, cancellationToken);
    }

    [Function("CancelGeneration")]
    public async Task<IActionResult> Cancel(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = "generations/{id}")] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        return await generations.CancelAsync(client, id, cancellationToken) switch
        {
            CancelOutcome.Cancelling => new AcceptedResult(StatusUrl(request, id), new { id, status = "Terminating" }),
            CancelOutcome.Ended => Problem(StatusCodes.Status409Conflict, $"Generation '{id}' has already ended."),
            _ => NotFound(id),
        };
    }

    private async Task<IActionResult> AcceptedOrDoneAsync(HttpRequest request, DurableTaskClient client, StartOutcome outcome, TimeSpan wait, CancellationToken cancellationToken)
    {
        switch (outcome.Disposition)
        {
            case StartDisposition.Invalid:
                return HttpResults.Invalid(outcome.Errors!);
            case StartDisposition.Conflict:
                return Problem(StatusCodes.Status409Conflict, $"The {IdempotencyHeader} was already used for a different request.");
            case StartDisposition.NotFound:
                return Problem(StatusCodes.Status404NotFound, "The generation to re-decode does not exist.");
        }

        string id = outcome.GenerationId!;
        if (wait > TimeSpan.Zero)
        {
            var status = await generations.WaitAsync(client, id, wait, cancellationToken);
            if (status is { RuntimeStatus: "Completed" or "Failed" or "Terminated" })
                return new OkObjectResult(GenerationStatusResponse.From(status, request));
        }
        request.HttpContext.Response.Headers.RetryAfter = "2";
        return new AcceptedResult(StatusUrl(request, id), new { id, statusUrl = StatusUrl(request, id), existing = outcome.Disposition == StartDisposition.Existing });
    }

    /// <summary>The Idempotency-Key header, scoped to the caller (<see cref="CallerIdentity"/>) so keys never cross callers.</summary>
    private bool TryReadIdempotencyKey(HttpRequest request, out string? key, out IActionResult? error)
    {
        key = request.Headers[IdempotencyHeader].FirstOrDefault();
        error = null;
        if (key is null)
            return true;
        if (key.Length is 0 or > MaxIdempotencyKeyLength || !key.All(c => c is >= ' ' and <= '~'))
        {
            error = HttpResults.Invalid(IdempotencyHeader, $"The key must have 1 … {MaxIdempotencyKeyLength} printable ASCII characters.");
            return false;
        }
        key = CallerIdentity.Scope(key, CallerIdentity.Of(request, options.Value));
        return true;
    }

    private bool TryReadWait(HttpRequest request, out TimeSpan wait, out IActionResult? error)
    {
        wait = TimeSpan.Zero;
        error = null;
        string? text = request.Query["wait"].FirstOrDefault();
        if (text is null)
            return true;
        double max = options.Value.MaxWait.TotalSeconds;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) || !double.IsFinite(seconds) || seconds < 0 || seconds > max)
        {
            error = HttpResults.Invalid("wait", $"'{text}' is not a number of seconds in 0 … {max}.");
            return false;
        }
        wait = TimeSpan.FromSeconds(seconds);
        return true;
    }

    internal static string StatusUrl(HttpRequest request, string id) => HttpResults.Url(request, $"generations/{id}");

    private static ObjectResult NotFound(string id) => Problem(StatusCodes.Status404NotFound, $"Generation '{id}' does not exist.");

    private static ObjectResult Problem(int status, string detail) => HttpResults.Problem(status, detail);
}

/// <summary>The JSON a client sees for a generation.</summary>
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
    public static GenerationStatusResponse From(GenerationStatus status, HttpRequest request) => new(
        status.GenerationId,
        status.RuntimeStatus,
        status.Stage,
        status.Progress,
        status.CreatedAt,
        status.LastUpdatedAt,
        status.Error,
        Enumerable.Range(0, status.Result?.Images.Count ?? 0)
            .Select(i => $"{GenerationHttpFunctions.StatusUrl(request, status.GenerationId)}/images/{i}").ToArray(),
        status.Batch);
}

/// <summary>A page of the gallery as a client sees it: newest first; <see cref="Next"/> is the next page's link, null after the last.</summary>
public sealed record GenerationListResponse(IReadOnlyList<GenerationListItem> Items, string? ContinuationToken, string? Next)
{
    public static GenerationListResponse From(GalleryPage page, GalleryQuery query, HttpRequest request)
    {
        string? next = null;
        if (page.ContinuationToken is { } token)
        {
            var parameters = new List<string> { $"limit={query.Limit}", $"continuationToken={Uri.EscapeDataString(token)}" };
            if (!string.IsNullOrEmpty(query.Model))
                parameters.Add($"model={Uri.EscapeDataString(query.Model)}");
            if (!string.IsNullOrEmpty(query.Text))
                parameters.Add($"q={Uri.EscapeDataString(query.Text)}");
            next = HttpResults.Url(request, "generations?" + string.Join('&', parameters));
        }
        return new(page.Items.Select(item => GenerationListItem.From(item, request)).ToArray(), page.ContinuationToken, next);
    }
}

/// <summary>One generation of the gallery: its recipe in short, its status now and, once completed, its image links.</summary>
public sealed record GenerationListItem(string Id, string Status, string StatusUrl, DateTimeOffset CreatedAt, string Prompt, string? NegativePrompt,
    int Width, int Height, ulong Seed, ulong DecoderSeed, int PriorSteps, int DecoderSteps, double PriorGuidance, string PriorModel, string DecoderModel,
    string? RedecodeOf, IReadOnlyList<string> Images)
{
    public static GenerationListItem From(GalleryItem item, HttpRequest request)
    {
        var e = item.Entry;
        string statusUrl = GenerationHttpFunctions.StatusUrl(request, e.Id);
        var images = item.Status == "Completed" ? Enumerable.Range(0, e.Images).Select(i => $"{statusUrl}/images/{i}").ToArray() : [];
        return new(e.Id, item.Status, statusUrl, e.CreatedAt, e.Prompt, e.NegativePrompt, e.Width, e.Height, e.Seed, e.DecoderSeed, e.PriorSteps,
            e.DecoderSteps, e.PriorGuidance, e.PriorModel, e.DecoderModel, e.RedecodeOf, images);
    }
}
