using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Api;

/// <summary>
/// The generation routes' handlers (start, status, images, re-decode, cancel), host-neutral: the Functions triggers and
/// <c>wuerstchen serve</c> both call them. Thin: <see cref="GenerationService"/> does the work.
/// </summary>
public sealed class GenerationApi(GenerationService generations, IBlobStore store, IOptions<ApiOptions> options)
{
    public const string IdempotencyHeader = "Idempotency-Key";
    private const int MaxIdempotencyKeyLength = 200;

    public async Task<IActionResult> Start(
        HttpRequest request,
        DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        var (body, bodyError) = await HttpResults.ReadBodyAsync<GenerationRequest>(request, options.Value.MaxBodyBytes, cancellationToken);
        if (bodyError is not null)
            return bodyError;
        if (!TryReadIdempotencyKey(request, out string? key, out var keyError))
            return keyError!;
        if (!TryReadWait(request, out var wait, out var waitError))
            return waitError!;

        if (body is not null)
            body = body with { PriorModel = body.PriorModel ?? options.Value.DefaultPriorModel, DecoderModel = body.DecoderModel ?? options.Value.DefaultDecoderModel };
        var outcome = await generations.StartAsync(client, body, key, cancellationToken);
        return await AcceptedOrDoneAsync(request, client, outcome, wait, cancellationToken);
    }

    public async Task<IActionResult> Get(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        var status = await generations.GetStatusAsync(client, id, cancellationToken);
        return status is null ? NotFound(id) : new OkObjectResult(GenerationStatusResponse.From(status, request));
    }

    public async Task<IActionResult> GetImage(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        int index,
        CancellationToken cancellationToken)
    {
        string? blob = await generations.ImageBlobAsync(client, id, index, cancellationToken);
        if (blob is null)
            return Problem(StatusCodes.Status404NotFound, $"Generation '{id}' has no image {index} (unknown, not finished, or out of range).");
        return await HttpResults.PngAsync(store, blob, options.Value, $"{id}-{index}.png", cancellationToken);
    }

    public async Task<IActionResult> Redecode(
        HttpRequest request,
        DurableTaskClient client,
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

    public async Task<IActionResult> Cancel(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        return await generations.CancelAsync(client, id, cancellationToken) switch
        {
            CancelOutcome.Cancelling => new AcceptedResult(StatusUrl(request, id), new CancelResponse(id, "Terminating")),
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
        return new AcceptedResult(StatusUrl(request, id), new StartedResponse(id, StatusUrl(request, id), outcome.Disposition == StartDisposition.Existing));
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

    /// <summary>
    /// How long to wait for the end: <c>?wait=N</c>, or else a <c>Prefer: wait=N</c> header (RFC 7240, as Replicate and
    /// cog take it); the one used is echoed in <c>Preference-Applied</c>. Either must be a finite number of seconds in
    /// 0 … <see cref="ApiOptions.MaxWait"/>.
    /// </summary>
    private bool TryReadWait(HttpRequest request, out TimeSpan wait, out IActionResult? error)
    {
        wait = TimeSpan.Zero;
        error = null;
        string field = "wait";
        string? text = request.Query["wait"].FirstOrDefault();
        if (text is null && PreferredWait(request.Headers["Prefer"]) is { } preferred)
            (field, text) = ("Prefer", preferred);
        if (text is null)
            return true;
        double max = options.Value.MaxWait.TotalSeconds;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds) || !double.IsFinite(seconds) || seconds < 0 || seconds > max)
        {
            error = HttpResults.Invalid(field, field == "wait"
                ? $"'{text}' is not a number of seconds in 0 … {max}."
                : $"wait={text} is not a number of seconds in 0 … {max}.");
            return false;
        }
        wait = TimeSpan.FromSeconds(seconds);
        if (field == "Prefer")
            request.HttpContext.Response.Headers["Preference-Applied"] = $"wait={text}";
        return true;
    }

    /// <summary>The value of the <c>wait</c> preference among the <c>Prefer</c> headers (<c>respond-async, wait=10</c>), or null.</summary>
    internal static string? PreferredWait(Microsoft.Extensions.Primitives.StringValues headers)
    {
        foreach (string? header in headers)
        {
            foreach (string preference in (header ?? "").Split(','))
            {
                string token = preference.Split(';')[0].Trim();
                int equals = token.IndexOf('=');
                if (equals > 0 && token[..equals].Trim().Equals("wait", StringComparison.OrdinalIgnoreCase))
                    return token[(equals + 1)..].Trim().Trim('"');
            }
        }
        return null;
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
            .Select(i => $"{GenerationApi.StatusUrl(request, status.GenerationId)}/images/{i}").ToArray(),
        status.Batch);
}
