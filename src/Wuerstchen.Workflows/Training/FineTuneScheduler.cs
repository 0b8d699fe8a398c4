using System.Text;
using System.Text.Json;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Workflows.Training;

/// <summary>What the retraining timer did about one dataset, and why. Appended to <c>training/schedule-log.jsonl</c>.</summary>
public sealed record ScheduleDecision(DateTimeOffset At, string Dataset, string DatasetKey, string Action, string Reason, string? InstanceId, string? RunId, string? DatasetVersion);

/// <summary>
/// The retraining timer's logic. For each scheduled dataset it reads the dataset's manifest (content hashes of
/// every image and caption) and compares its version with the one the newest published model of that dataset was
/// trained on. When they differ it starts <c>FineTuneStageC</c> under the dataset's singleton instance id
/// <c>finetune-{datasetKey}</c> — never while that instance is pending or running — as run
/// <c>finetune-{datasetKey}-{hash of dataset version and recipe}</c>, so a failed run of the same data resumes from
/// its checkpoints on the next tick. Otherwise it records why it skipped.
/// </summary>
public sealed partial class FineTuneScheduler(IBlobStore store, FineTuneService service, FineTunedModels versions, ModelLocator models,
    IOptions<TrainingOptions> training, ILogger<FineTuneScheduler> logger)
{
    public const string Started = "started";
    public const string Skipped = "skipped";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private static readonly SemaphoreSlim LogGate = new(1, 1);

    public static string InstanceIdFor(string datasetKey) => $"finetune-{datasetKey}";

    public async Task<IReadOnlyList<ScheduleDecision>> RunAsync(DurableTaskClient client, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var decisions = new List<ScheduleDecision>();
        var options = training.Value;
        var published = (await versions.ListAsync(cancellationToken).ConfigureAwait(false)).Select(p => p.Latest).ToArray();
        foreach (var scheduled in options.Scheduled)
            decisions.Add(await DecideAsync(client, scheduled, published, now, cancellationToken).ConfigureAwait(false));
        await AppendLogAsync(decisions, cancellationToken).ConfigureAwait(false);
        foreach (var decision in decisions)
            LogDecision(decision.Dataset, decision.Action, decision.Reason);
        return decisions;
    }

    /// <summary>Every decision recorded so far, oldest first.</summary>
    public async Task<IReadOnlyList<ScheduleDecision>> ReadLogAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await store.OpenReadAsync(TrainingBlobs.ScheduleLog, cancellationToken).ConfigureAwait(false);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            string text = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
            return text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<ScheduleDecision>(l, Json)!).ToArray();
        }
        catch (BlobNotFoundException)
        {
            return [];
        }
    }

    private async Task<ScheduleDecision> DecideAsync(DurableTaskClient client, ScheduledFineTune scheduled, IReadOnlyList<ModelVersion> published, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var request = scheduled.Request;
        string label = scheduled.Name.Length > 0 ? scheduled.Name : request.Dataset?.ToString() ?? "(no dataset)";
        string key = request.Dataset?.Key() ?? "";
        ScheduleDecision Skip(string reason, string? instanceId = null, string? runId = null, string? version = null) =>
            new(now, label, key, Skipped, reason, instanceId, runId, version);

        // A fine-tuned base prior is pinned to its newest revision: a new revision of the base is a new recipe to train.
        var pinned = request with { RunId = null, BasePrior = request.BasePrior is { } basePrior ? models.Pin(basePrior) : null };
        var validated = FineTuneRequestValidator.Validate(pinned, training.Value, models.Problem, () => "pending");
        if (!validated.IsValid)
            return Skip("invalid request: " + string.Join(" ", validated.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")));
        var run = validated.Run!;

        DatasetManifest manifest;
        try
        {
            manifest = await DatasetScanner.ScanAsync(DatasetSources.Open(run.Dataset, store, training.Value), DatasetLimits.From(training.Value), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or BlobNotFoundException)
        {
            return Skip($"the dataset could not be read: {e.Message}");
        }
        if (manifest.Items.Count == 0)
            return Skip($"the dataset has no valid items ({manifest.Problems.Count} problem(s)).", version: manifest.Version);

        var current = published.FirstOrDefault(v => v.DatasetKey == run.DatasetKey);
        if (current is not null && current.DatasetVersion == manifest.Version)
            return Skip($"unchanged: model version {current.VersionId} was trained on dataset version {Short(manifest.Version)}.", version: manifest.Version);

        string instanceId = InstanceIdFor(run.DatasetKey);
        string runId = $"{instanceId}-{TrainingHashes.Of(manifest.Version + "/" + run.Recipe.Hash())[..12]}";
        if (await FineTuneService.IsActiveAsync(client, instanceId, cancellationToken).ConfigureAwait(false))
            return Skip($"a fine-tune of this dataset is already running as {instanceId}.", instanceId, version: manifest.Version);

        var outcome = await service.StartRunAsync(client, run with { RunId = runId }, instanceId, cancellationToken).ConfigureAwait(false);
        string why = current is null
            ? $"no published model of this dataset yet; dataset version {Short(manifest.Version)} ({manifest.Items.Count} items)."
            : $"images or captions changed since model version {current.VersionId} (dataset version {Short(current.DatasetVersion)} → {Short(manifest.Version)}).";
        return outcome.Disposition switch
        {
            StartDisposition.Started => new ScheduleDecision(now, label, key, Started, why, instanceId, runId, manifest.Version),
            StartDisposition.Existing => Skip($"a fine-tune of this dataset is already running as {instanceId}.", instanceId, runId, manifest.Version),
            StartDisposition.Invalid => Skip("it cannot start: " + string.Join(" ", outcome.Errors!.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}")), instanceId, runId, manifest.Version),
            _ => Skip($"run {runId} exists with other settings; it was not started.", instanceId, runId, manifest.Version),
        };
    }

    private async Task AppendLogAsync(IReadOnlyList<ScheduleDecision> decisions, CancellationToken cancellationToken)
    {
        if (decisions.Count == 0)
            return;
        // Blobs have no append here; the timer is a singleton across replicas, and this gate covers one process.
        await LogGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var text = new StringBuilder();
            foreach (var earlier in await ReadLogAsync(cancellationToken).ConfigureAwait(false))
                text.Append(JsonSerializer.Serialize(earlier, Json)).Append('\n');
            foreach (var decision in decisions)
                text.Append(JsonSerializer.Serialize(decision, Json)).Append('\n');
            using var content = new MemoryStream(Encoding.UTF8.GetBytes(text.ToString()));
            await store.WriteAsync(TrainingBlobs.ScheduleLog, content, new BlobWriteOptions { ContentType = "application/x-ndjson" }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            LogGate.Release();
        }
    }

    private static string Short(string version) => version[..Math.Min(12, version.Length)];

    [LoggerMessage(Level = LogLevel.Information, Message = "Retraining of {Dataset}: {Action}, {Reason}")]
    private partial void LogDecision(string dataset, string action, string reason);
}
