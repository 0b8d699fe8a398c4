using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline;
using Wuerstchen.Pipeline.Diagnostics;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Telemetry;
using Wuerstchen.Workflows.Webhooks;

namespace Wuerstchen.Workflows.Generation;

public enum StartDisposition
{
    Started,
    Existing,
    Invalid,
    Conflict,
    NotFound,
}

/// <summary>The outcome of starting a generation (or a re-decode).</summary>
public sealed record StartOutcome(StartDisposition Disposition, string? GenerationId, IReadOnlyDictionary<string, string[]>? Errors = null);

/// <summary>What a cancel request found.</summary>
public enum CancelOutcome
{
    /// <summary>No generation (or bulk batch) has this id; an id of another kind counts as none.</summary>
    NotFound,

    /// <summary>It has already ended.</summary>
    Ended,

    /// <summary>It was pending or running: its stage stops at its next step.</summary>
    Cancelling,
}

/// <summary>A re-decode of an earlier generation's Stage C latents with other Stage B settings.</summary>
[System.Text.Json.Serialization.JsonUnmappedMemberHandling(System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow)]
public sealed record RedecodeRequest
{
    public long? DecoderSeed { get; init; }
    public int? DecoderSteps { get; init; }
    public double? DecoderGuidance { get; init; }
    public string? DecoderModel { get; init; }
}

/// <summary>Where a generation stands, for the status API and the CLI.</summary>
public sealed record GenerationStatus(
    string GenerationId,
    string RuntimeStatus,
    string? Stage,
    StageProgress? Progress,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt,
    string? Error,
    GenerationResult? Result,
    GenerationBatch? Batch);

/// <summary>
/// Starts, inspects and cancels generations: validation, idempotency keys, plan blobs, scheduling. Shared by the HTTP
/// API and the CLI; the Durable client is passed per call as the Functions host hands it to each invocation.
/// </summary>
public sealed class GenerationService(BatchPlanStore plans, IBlobStore store, ModelLocator models, GenerationCancellation cancellation, GenerationGallery gallery,
    IOptions<ModelOptions> modelOptions, IOptions<GenerationLimits> limits, IOptions<WorkflowOptions> workflowOptions, IOptions<WebhookOptions> webhookOptions)
{
    private const string RequestHashMetadata = "requestHash";

    public static string PlanBlobFor(string generationId) => $"generations/{generationId}/batch.json";

    /// <summary>Maps a client's idempotency key to an instance id, so a repeated request attaches to the same generation.</summary>
    public static string GenerationIdFor(string? idempotencyKey) => idempotencyKey is null
        ? "gen-" + Guid.NewGuid().ToString("N")
        : "gen-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(idempotencyKey)))[..32];

    /// <summary>
    /// Whether <paramref name="id"/> could be an instance id this service makes (ASCII letters, digits, '-' and '_', at
    /// most 128): checked before any blob name is built from it, so '..', '.wuerstchen', '\\' or a control character in
    /// a URL never reach the store.
    /// </summary>
    public static bool IsWellFormedId(string? id) =>
        id is { Length: > 0 and <= 128 } && char.IsAsciiLetterOrDigit(id[0]) && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <param name="apiBase">The API's root as the caller reached it (<c>{scheme}://{host}/api/</c>), for the image links of a webhook's body.</param>
    public async Task<StartOutcome> StartAsync(DurableTaskClient client, GenerationRequest? request, string? idempotencyKey, CancellationToken cancellationToken,
        string? apiBase = null)
    {
        // A fine-tuned prior is pinned to its newest revision now: the plan, the blob keys, the resident model and the
        // recipe in the PNGs then name the weights this request got. The idempotency fingerprint is the request as sent.
        var pinned = request?.PriorModel is { } prior ? request with { PriorModel = models.Pin(prior) } : request;
        var validated = GenerationRequestValidator.Validate(pinned, limits.Value, models.Problem, modelOptions.Value.Precision);
        string? webhookProblem = request?.Webhook is { } url ? webhookOptions.Value.Problem(url) : null;
        if (!validated.IsValid || webhookProblem is not null)
        {
            var errors = new Dictionary<string, string[]>(validated.Errors ?? new Dictionary<string, string[]>(), StringComparer.Ordinal);
            if (webhookProblem is not null)
                errors["webhook"] = [webhookProblem];
            return new StartOutcome(StartDisposition.Invalid, null, errors);
        }
        string fingerprint = Fingerprint(request);
        var webhook = request!.Webhook is { } target ? new WebhookTarget(target, apiBase, webhookOptions.Value.Retry) : null;
        return await StartBatchAsync(client, validated.Batch!, GenerationIdFor(idempotencyKey), fingerprint, requireStageC: false, redecodeOf: null, cancellationToken, webhook).ConfigureAwait(false);
    }

    /// <summary>Runs Stage B and A again on generation <paramref name="sourceId"/>'s Stage C latents with other decoder settings.</summary>
    public async Task<StartOutcome> RedecodeAsync(DurableTaskClient client, string sourceId, RedecodeRequest? request, string? idempotencyKey, CancellationToken cancellationToken)
    {
        if (!IsWellFormedId(sourceId))
            return new StartOutcome(StartDisposition.NotFound, null);
        GenerationBatch source;
        try
        {
            source = await plans.ReadAsync(new BatchRef(PlanBlobFor(sourceId), 0), cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
            return new StartOutcome(StartDisposition.NotFound, null);
        }

        request ??= new RedecodeRequest();
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        var limit = limits.Value;
        if (request.DecoderSeed is < 0 or > GenerationRequestValidator.MaxSeed)
            errors["decoderSeed"] = [$"{request.DecoderSeed} is outside 0 … {GenerationRequestValidator.MaxSeed}."];
        if (request.DecoderSteps is < 1 || request.DecoderSteps > limit.MaxDecoderSteps)
            errors["decoderSteps"] = [$"{request.DecoderSteps} is outside 1 … {limit.MaxDecoderSteps}."];
        if (request.DecoderGuidance is { } g && (!double.IsFinite(g) || g < 0 || g > limit.MaxGuidance))
            errors["decoderGuidance"] = [$"{g} is outside 0 … {limit.MaxGuidance}."];
        if (request.DecoderModel is { } model && models.Problem(model, ModelRole.Decoder) is { } modelProblem)
            errors["decoderModel"] = [modelProblem];
        if (errors.Count > 0)
            return new StartOutcome(StartDisposition.Invalid, null, errors);

        var batch = source with
        {
            Settings = source.Settings with
            {
                DecoderSteps = request.DecoderSteps ?? source.Settings.DecoderSteps,
                DecoderTimesteps = request.DecoderSteps is null ? source.Settings.DecoderTimesteps : null,
                DecoderGuidanceScale = request.DecoderGuidance ?? source.Settings.DecoderGuidanceScale,
                DecoderModel = request.DecoderModel ?? source.Settings.DecoderModel,
            },
            Items = source.Items.Select(i => i with { DecoderSeed = request.DecoderSeed is { } s ? (ulong)s : i.DecoderSeed }).ToArray(),
        };
        string fingerprint = Fingerprint(new { sourceId, request });
        return await StartBatchAsync(client, batch, GenerationIdFor(idempotencyKey), fingerprint, requireStageC: true, redecodeOf: sourceId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Where the generation (or bulk batch) stands; null when there is none, or the id is of another kind (a bulk job, a fine-tune).</summary>
    public async Task<GenerationStatus?> GetStatusAsync(DurableTaskClient client, string generationId, CancellationToken cancellationToken)
    {
        var instance = await GetGenerationAsync(client, generationId, cancellationToken).ConfigureAwait(false);
        if (instance is null)
            return null;
        var custom = instance.SerializedCustomStatus is { } status ? JsonSerializer.Deserialize<GenerationCustomStatus>(status) : null;
        var progress = instance.RuntimeStatus == OrchestrationRuntimeStatus.Running
            ? await ProgressPublisher.ReadAsync(store, generationId, cancellationToken).ConfigureAwait(false)
            : null;
        var result = instance.RuntimeStatus == OrchestrationRuntimeStatus.Completed ? instance.ReadOutputAs<GenerationResult>() : null;
        GenerationBatch? batch = null;
        try
        {
            // A bulk batch's plan is one entry of its job's plan; the orchestration's input says which.
            var planned = instance.SerializedInput is null ? null : instance.ReadInputAs<GenerationJob>()?.Batch;
            batch = await plans.ReadAsync(planned ?? new BatchRef(PlanBlobFor(generationId), 0), cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
        }
        return new GenerationStatus(generationId, instance.RuntimeStatus.ToString(), custom?.Stage, progress,
            instance.CreatedAt, instance.LastUpdatedAt, ErrorText.WithoutPaths(instance.FailureDetails?.ErrorMessage), result, batch);
    }

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for the generation to end; the status either way. The Durable client's own
    /// wait is joined by a look at the instance that starts after 50 ms and backs off to once every 500 ms: on the Azure
    /// Storage backend the client's wait polls the instance only every couple of seconds, which kept a small image's
    /// answer 1–2 s behind its end.
    /// </summary>
    public async Task<GenerationStatus?> WaitAsync(DurableTaskClient client, string generationId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (timeout > TimeSpan.Zero)
        {
            using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            window.CancelAfter(timeout);
            Task[] waits =
            [
                client.WaitForInstanceCompletionAsync(generationId, window.Token),
                LookUntilEndedAsync(client, generationId, window.Token),
            ];
            // The first that sees the end ends the wait; one that fails leaves it to the other (or to the timeout).
            var pending = waits.ToList();
            while (pending.Count > 0)
            {
                var ended = await Task.WhenAny(pending).ConfigureAwait(false);
                if (ended.IsCompletedSuccessfully)
                    break;
                pending.Remove(ended);
            }
            await window.CancelAsync().ConfigureAwait(false);
            foreach (var wait in waits)
            {
                try
                {
                    await wait.ConfigureAwait(false);
                }
                catch (Exception) when (!cancellationToken.IsCancellationRequested)
                {
                    // Either wait only says when to read the status; the read below reports what is wrong, if anything.
                }
            }
            cancellationToken.ThrowIfCancellationRequested();
        }
        return await GetStatusAsync(client, generationId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>First and longest interval between two looks at an instance that a caller waits on.</summary>
    private static readonly (TimeSpan First, TimeSpan Longest) LookInterval = (TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(500));

    private static async Task<OrchestrationMetadata?> LookUntilEndedAsync(DurableTaskClient client, string generationId, CancellationToken cancellationToken)
    {
        var interval = LookInterval.First;
        while (true)
        {
            await Task.Delay(interval, cancellationToken).ConfigureAwait(false);
            try
            {
                var instance = await client.GetInstanceAsync(generationId, getInputsAndOutputs: false, cancellationToken).ConfigureAwait(false);
                if (instance is null || instance.IsCompleted)
                    return instance;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A failed look is retried at the next interval; the client's own wait goes on meanwhile.
            }
            interval = TimeSpan.FromTicks(Math.Min(LookInterval.Longest.Ticks, interval.Ticks * 3 / 2));
        }
    }

    /// <summary>The blob name of image <paramref name="index"/> of a completed generation; null when there is none.</summary>
    public async Task<string?> ImageBlobAsync(DurableTaskClient client, string generationId, int index, CancellationToken cancellationToken)
    {
        var status = await GetStatusAsync(client, generationId, cancellationToken).ConfigureAwait(false);
        var images = status?.Result?.Images;
        return images is not null && index >= 0 && index < images.Count ? images[index] : null;
    }

    /// <summary>
    /// Stops a pending or running generation: its cancel marker stops the running stage at its next step, wherever it
    /// runs, and a generation of its own is terminated. A batch of a bulk job is only marked: its stage fails as
    /// cancelled (never retried), and the bulk job records the batch's prompts as cancelled and goes on.
    /// </summary>
    /// <summary>How long a cancel waits for the engine to record the termination before it stops the running stage anyway.</summary>
    private static readonly TimeSpan TerminationWait = TimeSpan.FromSeconds(5);

    public async Task<CancelOutcome> CancelAsync(DurableTaskClient client, string generationId, CancellationToken cancellationToken)
    {
        var instance = await GetGenerationAsync(client, generationId, cancellationToken).ConfigureAwait(false);
        if (instance is null)
            return CancelOutcome.NotFound;
        if (instance.IsCompleted)
            return CancelOutcome.Ended;
        const string reason = "Cancelled by the client.";
        // Terminate before the marker stops the running stage, and give the engine a moment to record it: otherwise the
        // stage's cancellation failure can reach the orchestration first and end it as Failed instead of Terminated.
        // A bulk batch is only marked: its job records it as cancelled.
        if (instance.ReadInputAs<GenerationJob>()?.BulkJobId is null)
        {
            await client.TerminateInstanceAsync(generationId, reason, cancellationToken).ConfigureAwait(false);
            using var window = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            window.CancelAfter(TerminationWait);
            try
            {
                await client.WaitForInstanceCompletionAsync(generationId, getInputsAndOutputs: false, window.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
        }
        await cancellation.RequestAsync(generationId, reason, cancellationToken).ConfigureAwait(false);
        return CancelOutcome.Cancelling;
    }

    /// <summary>The GenerateImage instance with this id (a generation or a bulk batch); null for none or another kind.</summary>
    private static async Task<OrchestrationMetadata?> GetGenerationAsync(DurableTaskClient client, string generationId, CancellationToken cancellationToken)
    {
        var instance = await client.GetInstanceAsync(generationId, getInputsAndOutputs: true, cancellationToken).ConfigureAwait(false);
        return instance?.Name == GenerateImageOrchestration.Name ? instance : null;
    }

    private async Task<StartOutcome> StartBatchAsync(DurableTaskClient client, GenerationBatch batch, string generationId, string fingerprint, bool requireStageC, string? redecodeOf,
        CancellationToken cancellationToken, WebhookTarget? webhook = null)
    {
        string planBlob = PlanBlobFor(generationId);
        var existing = await store.GetInfoAsync(planBlob, cancellationToken).ConfigureAwait(false);
        DateTimeOffset createdAt = existing?.LastModified ?? DateTimeOffset.UtcNow;
        if (existing is not null)
        {
            bool same = existing.Metadata.TryGetValue(RequestHashMetadata, out var stored) && stored == fingerprint;
            if (!same)
                return new StartOutcome(StartDisposition.Conflict, generationId);
            if (existing.Metadata.TryGetValue(GenerationGallery.CreatedAtMetadata, out var created)
                && DateTimeOffset.TryParse(created, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.RoundtripKind, out var planned))
                createdAt = planned;
            if (await client.GetInstanceAsync(generationId, cancellationToken).ConfigureAwait(false) is not null)
                return new StartOutcome(StartDisposition.Existing, generationId);
        }
        else
        {
            try
            {
                createdAt = DateTimeOffset.UtcNow;
                var metadata = new Dictionary<string, string>
                {
                    [RequestHashMetadata] = fingerprint,
                    [GenerationGallery.CreatedAtMetadata] = createdAt.ToString("O", System.Globalization.CultureInfo.InvariantCulture),
                };
                await plans.WriteAsync(planBlob, [batch], metadata, overwrite: false, cancellationToken).ConfigureAwait(false);
            }
            catch (BlobAlreadyExistsException)
            {
                // A concurrent request with the same key won the race and schedules the orchestration; it is this
                // request only if the fingerprints match.
                var winner = await store.GetInfoAsync(planBlob, cancellationToken).ConfigureAwait(false);
                bool same = winner is not null && winner.Metadata.TryGetValue(RequestHashMetadata, out var stored) && stored == fingerprint;
                return new StartOutcome(same ? StartDisposition.Existing : StartDisposition.Conflict, generationId);
            }
        }

        // The trace of this generation starts here (a child of the caller's request span, if any); every stage joins it.
        using var span = WuerstchenTelemetry.StartWorkflowSpan("GenerateImage submit", System.Diagnostics.Activity.Current?.Id, generationId,
            System.Diagnostics.ActivityKind.Producer);
        span?.SetTag(WuerstchenTelemetry.Tags.GenerationId, generationId);
        GenerationTelemetry.Tag(span, batch);
        var job = new GenerationJob(generationId, new BatchRef(planBlob, 0), workflowOptions.Value.Retry, requireStageC, Webhook: webhook,
            Trace: WorkflowTrace.From(span));
        try
        {
            await client.ScheduleNewOrchestrationInstanceAsync(GenerateImageOrchestration.Name, job,
                new StartOrchestrationOptions(generationId), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Another caller with the same key scheduled it between our look and our start: that one is the start.
            if (await client.GetInstanceAsync(generationId, cancellationToken).ConfigureAwait(false) is not null)
                return new StartOutcome(StartDisposition.Existing, generationId);
            throw;
        }
        // Recorded once it is scheduled (named by the plan's creation time, so recording again rewrites the same entry).
        await gallery.RecordAsync(GenerationGallery.EntryOf(generationId, batch, createdAt, redecodeOf), cancellationToken).ConfigureAwait(false);
        return new StartOutcome(StartDisposition.Started, generationId);
    }

    private static string Fingerprint(object? value) =>
        Convert.ToHexStringLower(SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(value)));
}
