using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Api;

/// <summary>The fine-tuning HTTP API: start, status, latest grid, cancel, and the model versions. Thin: <see cref="FineTuneService"/> does the work.</summary>
public sealed class FineTuneApi(FineTuneService fineTunes, IBlobStore store, IOptions<ApiOptions> options)
{
    public async Task<IActionResult> Start(
        HttpRequest request,
        DurableTaskClient client,
        CancellationToken cancellationToken)
    {
        var (body, bodyError) = await HttpResults.ReadBodyAsync<FineTuneRequest>(request, options.Value.MaxBodyBytes, cancellationToken);
        if (bodyError is not null)
            return bodyError;

        if (body is not null)
            body = body with { BasePrior = body.BasePrior ?? NullIfEmpty(options.Value.DefaultPriorModel), DecoderModel = body.DecoderModel ?? NullIfEmpty(options.Value.DefaultDecoderModel) };
        var outcome = await fineTunes.StartAsync(client, body, cancellationToken);
        switch (outcome.Disposition)
        {
            case StartDisposition.Invalid:
                return HttpResults.Invalid(outcome.Errors!);
            case StartDisposition.Conflict:
                return Problem(StatusCodes.Status409Conflict, $"Run '{outcome.GenerationId}' already exists with another dataset or recipe.");
        }
        string id = outcome.GenerationId!;
        return new AcceptedResult(StatusUrl(request, id), new StartedResponse(id, StatusUrl(request, id), outcome.Disposition == StartDisposition.Existing));
    }

    public async Task<IActionResult> Get(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        var status = await fineTunes.GetStatusAsync(client, id, cancellationToken);
        return status is null ? NotFound(id) : new OkObjectResult(FineTuneStatusResponse.From(status, request));
    }

    public async Task<IActionResult> GetGrid(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        var status = await fineTunes.GetStatusAsync(client, id, cancellationToken);
        if (status?.LatestGrid is not { } grid)
            return Problem(StatusCodes.Status404NotFound, $"Fine-tune '{id}' has no validation grid (unknown, or no chunk finished yet).");
        return await HttpResults.PngAsync(store, grid, options.Value, $"{id}-grid.png", cancellationToken);
    }

    public async Task<IActionResult> Cancel(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        if (await fineTunes.CancelAsync(client, id, cancellationToken))
            return new AcceptedResult(StatusUrl(request, id), new CancelResponse(id, "Terminating"));
        return await fineTunes.GetStatusAsync(client, id, cancellationToken) is { } status
            ? Problem(StatusCodes.Status409Conflict, $"Fine-tune '{id}' has already ended ({status.RuntimeStatus}).")
            : NotFound(id);
    }

    public async Task<IActionResult> ListModels(
        HttpRequest request,
        CancellationToken cancellationToken)
    {
        var versions = await fineTunes.ListModelsAsync(cancellationToken);
        return new OkObjectResult(new ModelListResponse(versions.Select(ModelVersionResponse.From).ToArray()));
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    internal static string StatusUrl(HttpRequest request, string id) => HttpResults.Url(request, $"finetunes/{id}");

    private static ObjectResult NotFound(string id) => Problem(StatusCodes.Status404NotFound, $"Fine-tune '{id}' does not exist.");

    private static ObjectResult Problem(int status, string detail) => HttpResults.Problem(status, detail);
}

/// <summary>The JSON a client sees for a fine-tune.</summary>
public sealed record FineTuneStatusResponse(
    string Id,
    string? RunId,
    string Status,
    string? Phase,
    int Step,
    int TotalSteps,
    double? Loss,
    double? LearningRate,
    string? GridUrl,
    string? GridBlob,
    IReadOnlyList<CheckpointInfo> Checkpoints,
    IReadOnlyList<SkippedCheckpoint> SkippedCheckpoints,
    int? ResumedFrom,
    IReadOnlyList<LossPoint> RecentLoss,
    int? DatasetItems,
    IReadOnlyList<DatasetProblem> DatasetProblems,
    string? Model,
    string? RawModel,
    string? Error,
    DateTimeOffset CreatedAt,
    DateTimeOffset LastUpdatedAt,
    FineTuneProgressResponse? Progress,
    IReadOnlyList<LongCaption> LongCaptions,
    string? Revision,
    string? RevisionModel,
    string? RawRevisionModel)
{
    public static FineTuneStatusResponse From(FineTuneStatus status, HttpRequest request) => new(
        status.Id,
        status.RunId,
        status.RuntimeStatus,
        status.Phase,
        status.Step,
        status.TotalSteps,
        status.Loss,
        status.LearningRate,
        status.LatestGrid is null ? null : $"{FineTuneApi.StatusUrl(request, status.Id)}/grid",
        status.LatestGrid,
        status.Checkpoints,
        status.SkippedCheckpoints,
        status.ResumedFrom,
        status.RecentLoss,
        status.DatasetItems,
        status.DatasetProblems,
        status.Result?.ModelName,
        status.Result?.RawModelName,
        status.Error,
        status.CreatedAt,
        status.LastUpdatedAt,
        FineTuneProgressResponse.From(status.Progress),
        status.LongCaptions ?? [],
        status.Result?.Revision,
        status.Result?.RevisionName,
        status.Result?.RawRevisionName);
}

/// <summary>
/// What the running activity last reported (about every <c>Wuerstchen:Training:ProgressInterval</c>): preparing
/// (<see cref="ItemsDone"/> of <see cref="ItemsTotal"/> items) or training (the step, loss, learning rate, steps per
/// second over the current chunk and the estimated seconds to the last step).
/// </summary>
public sealed record FineTuneProgressResponse(string Phase, int Step, int TotalSteps, double? Loss, double? LearningRate, double? StepsPerSecond,
    double? EtaSeconds, int? ItemsDone, int? ItemsTotal, DateTimeOffset UpdatedAt)
{
    public static FineTuneProgressResponse? From(TrainingProgress? progress) => progress is null ? null
        : new(progress.Phase, progress.Step, progress.TotalSteps, progress.Loss, progress.LearningRate, progress.StepsPerSecond, progress.EtaSeconds,
            progress.ItemsDone, progress.ItemsTotal, progress.UpdatedAt);
}

public sealed record ModelListResponse(IReadOnlyList<ModelVersionResponse> Models);

/// <summary>
/// A published version as the model list shows it: <see cref="Name"/> (what generation requests put in
/// <c>priorModel</c>) follows its newest revision, whose fields these are; <see cref="Revisions"/> lists every revision,
/// newest first, each usable for good by its <see cref="ModelRevisionResponse.Name"/>.
/// </summary>
public sealed record ModelVersionResponse(string Name, string RawName, string VersionId, string Revision, string RevisionName, string RawRevisionName,
    string BasePrior, string DatasetKey, string DatasetVersion, int DatasetItems, string Recipe, int Steps, double? FinalLoss, DateTimeOffset CreatedAt,
    IReadOnlyList<ModelRevisionResponse> Revisions)
{
    public static ModelVersionResponse From(PublishedModel published)
    {
        var version = published.Latest;
        return new(version.Name, version.RawName, version.VersionId, version.Revision, version.RevisionName, version.RawRevisionName, version.BasePrior,
            version.DatasetKey, version.DatasetVersion, version.DatasetItems, version.Recipe.Name, version.Steps, version.FinalLoss, version.CreatedAt,
            published.Revisions.Select(r => new ModelRevisionResponse(r.Revision, r.RevisionName, r.RawRevisionName, r.Steps, r.FinalLoss, r.CreatedAt)).ToArray());
    }
}

public sealed record ModelRevisionResponse(string Revision, string Name, string RawName, int Steps, double? FinalLoss, DateTimeOffset CreatedAt);
