using System.Globalization;
using Microsoft.DurableTask.Client;
using Spectre.Console;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Cli;

/// <summary>
/// Follows a running fine-tune: the phase, the step inside the running chunk with its loss, learning rate, speed and
/// time left (a bar on a terminal; a line at most every progress interval otherwise), where it resumed from, the
/// checkpoints it skipped and why, and the dataset's problems once it is prepared.
/// </summary>
public sealed class FineTuneProgress(FineTuneService service, DurableTaskClient client, string id, TimeSpan interval)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    private bool _datasetShown;
    private bool _resumeShown;

    public async Task<FineTuneStatus> FollowAsync(CancellationToken cancellationToken)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
            return await FollowPlainAsync(cancellationToken);

        FineTuneStatus? final = null;
        var notes = new List<string>();
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                ProgressTask? preparing = null, training = null;
                while (true)
                {
                    var status = await PollAsync(cancellationToken);
                    notes.AddRange(Notes(status));
                    if (status.Progress is { Phase: TrainingProgress.Preparing, ItemsTotal: > 0 } prep)
                    {
                        preparing ??= context.AddTask("Preparing the dataset", maxValue: prep.ItemsTotal.Value);
                        preparing.Value = prep.ItemsDone ?? 0;
                    }
                    if (status.Phase is "Training" or "Rendering" or "Publishing" or "Completed" && status.TotalSteps > 0)
                    {
                        if (preparing is not null)
                            preparing.Value = preparing.MaxValue;
                        training ??= context.AddTask("Training", maxValue: status.TotalSteps);
                        training.MaxValue = status.TotalSteps;
                        training.Value = status.Step;
                        training.Description = Markup.Escape(TrainingLine(status, withStep: false));
                    }
                    if (IsFinished(status))
                    {
                        final = status;
                        return;
                    }
                    await Task.Delay(PollInterval, cancellationToken);
                }
            });
        foreach (string note in notes)
            Console.WriteLine(note);
        return final!;
    }

    private async Task<FineTuneStatus> FollowPlainAsync(CancellationToken cancellationToken)
    {
        string? lastLine = null;
        int lastStep = -1;
        var lastPrinted = DateTimeOffset.MinValue;
        while (true)
        {
            var status = await PollAsync(cancellationToken);
            foreach (string note in Notes(status))
                Console.WriteLine(note);
            bool finished = IsFinished(status);
            string? line = Line(status);
            // A line when the phase changes, the last step, and otherwise at most once per progress interval.
            bool phaseChanged = line is not null && lastLine is not null && Phase(line) != Phase(lastLine);
            bool due = DateTimeOffset.UtcNow - lastPrinted >= interval || phaseChanged || finished || status.Step == status.TotalSteps;
            if (line is not null && line != lastLine && (status.Step != lastStep || phaseChanged || lastLine is null) && due)
            {
                Console.WriteLine(line);
                lastLine = line;
                lastStep = status.Step;
                lastPrinted = DateTimeOffset.UtcNow;
            }
            if (finished)
                return status;
            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    private static string Phase(string line) => line.Split(':', 2)[0];

    /// <summary>The progress line of a status; null before the run has a phase.</summary>
    private static string? Line(FineTuneStatus status)
    {
        if (status.RuntimeStatus == "Pending")
            return "Waiting to start…";
        if (status.Progress is { Phase: TrainingProgress.Preparing } prep && status.Phase == "Preparing")
            return prep.ItemsTotal is > 0 ? $"Preparing the dataset: {prep.ItemsDone}/{prep.ItemsTotal} items encoded" : "Preparing the dataset…";
        return status.Phase switch
        {
            "Preparing" => "Preparing the dataset…",
            "Training" when status.Progress is not { Phase: TrainingProgress.Training } => "Training: loading the model and the newest checkpoint…",
            "Training" => TrainingLine(status, withStep: true),
            "Rendering" => $"Rendering the validation grid at step {status.Step}/{status.TotalSteps}…",
            "Publishing" => $"Publishing the model version after {status.Step} steps…",
            "Completed" => $"Done: step {status.Step}/{status.TotalSteps}",
            _ => status.RuntimeStatus is "Failed" or "Terminated" ? null : "Starting…",
        };
    }

    private static string TrainingLine(FineTuneStatus status, bool withStep)
    {
        var parts = new List<string>();
        if (withStep)
            parts.Add($"step {status.Step}/{status.TotalSteps}");
        if (status.Loss is { } loss)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"loss {loss:F4}"));
        if (status.LearningRate is { } rate)
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"lr {rate:0.00E+00}"));
        if (status.Progress is { Phase: TrainingProgress.Training, StepsPerSecond: { } speed } progress)
        {
            parts.Add(string.Create(CultureInfo.InvariantCulture, $"{speed:0.##} steps/s"));
            if (progress.EtaSeconds is { } eta)
                parts.Add($"ETA {Duration(eta)}");
        }
        return "Training: " + string.Join(", ", parts);
    }

    private static string Duration(double seconds)
    {
        var span = TimeSpan.FromSeconds(Math.Max(0, Math.Round(seconds)));
        return span.TotalHours >= 1 ? $"{(int)span.TotalHours}h {span.Minutes:D2}m" : span.TotalMinutes >= 1 ? $"{span.Minutes}m {span.Seconds:D2}s" : $"{span.Seconds}s";
    }

    /// <summary>What to say once: where this start resumed from and what it skipped, then the dataset's problems.</summary>
    private IEnumerable<string> Notes(FineTuneStatus status)
    {
        if (!_resumeShown && (status.ResumedFrom is not null || status.SkippedCheckpoints.Count > 0) && status.Phase is not (null or "Preparing"))
        {
            _resumeShown = true;
            if (status.ResumedFrom is { } from)
                yield return $"Resumed from checkpoint {from}.";
            foreach (var skipped in status.SkippedCheckpoints.OrderByDescending(s => s.Step))
                yield return $"Skipped checkpoint {skipped.Step}: {skipped.Reason}";
        }
        if (!_datasetShown && status.DatasetItems is { } items && (status.Phase is not (null or "Preparing") || IsFinished(status)))
        {
            _datasetShown = true;
            yield return status.DatasetProblems.Count == 0
                ? $"Dataset: {items} item(s) to train on."
                : $"Dataset: {items} item(s) to train on; {status.DatasetProblems.Count} problem(s):";
            foreach (var problem in status.DatasetProblems)
                yield return $"  {problem.Name}: {problem.Reason}";
            if (status.LongCaptions is { Count: > 0 } longCaptions)
            {
                yield return $"  {longCaptions.Count} caption(s) are longer than the text encoder reads ({longCaptions[0].Kept} tokens) and were cut:";
                foreach (var caption in longCaptions)
                    yield return $"    {caption.Name} ({caption.Tokens} tokens)";
            }
        }
    }

    private async Task<FineTuneStatus> PollAsync(CancellationToken cancellationToken) =>
        await service.GetStatusAsync(client, id, cancellationToken) ?? throw new InvalidOperationException($"The fine-tune {id} disappeared.");

    private static bool IsFinished(FineTuneStatus status) => status.RuntimeStatus is "Completed" or "Failed" or "Terminated";
}
