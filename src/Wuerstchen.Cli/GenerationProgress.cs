using Microsoft.DurableTask.Client;
using Spectre.Console;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Cli;

/// <summary>Follows a running generation: progress bars per stage with ETA on a terminal, plain lines otherwise.</summary>
public static class GenerationProgress
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    private static readonly (string Stage, string Title)[] Stages =
    [
        (StageActivities.StageC, "Stage C (prior)"),
        (StageActivities.StageB, "Stage B (decoder)"),
        (StageActivities.StageA, "Stage A (decode)"),
    ];

    /// <summary>Polls until the generation ends; the final status.</summary>
    public static async Task<GenerationStatus> FollowAsync(GenerationService service, DurableTaskClient client, string id, GenerationSettings settings, CancellationToken cancellationToken)
    {
        int[] totals = [settings.PriorStepCount, settings.DecoderStepCount, 1];
        if (!AnsiConsole.Profile.Capabilities.Interactive)
            return await FollowPlainAsync(service, client, id, totals, cancellationToken);

        GenerationStatus? final = null;
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async context =>
            {
                var tasks = Stages.Select((s, i) => context.AddTask(s.Title, autoStart: false, maxValue: totals[i])).ToArray();
                while (true)
                {
                    var status = await PollAsync(service, client, id, cancellationToken);
                    int current = Array.FindIndex(Stages, s => s.Stage == status.Stage);
                    for (int i = 0; i < tasks.Length; i++)
                    {
                        bool done = status.RuntimeStatus == "Completed" || (current >= 0 && i < current);
                        if (done)
                        {
                            tasks[i].StartTask();
                            tasks[i].Value = tasks[i].MaxValue;
                        }
                        else if (i == current)
                        {
                            tasks[i].StartTask();
                            if (status.Progress is { } p && p.Stage == Stages[i].Stage)
                                tasks[i].Value = p.Step;
                        }
                    }
                    if (IsFinished(status))
                    {
                        final = status;
                        return;
                    }
                    await Task.Delay(PollInterval, cancellationToken);
                }
            });
        return final!;
    }

    private static async Task<GenerationStatus> FollowPlainAsync(GenerationService service, DurableTaskClient client, string id, int[] totals, CancellationToken cancellationToken)
    {
        string? last = null;
        while (true)
        {
            var status = await PollAsync(service, client, id, cancellationToken);
            int current = Array.FindIndex(Stages, s => s.Stage == status.Stage);
            string line = current < 0
                ? status.RuntimeStatus
                : status.Progress is { } p && p.Stage == status.Stage
                    ? $"{Stages[current].Title}: step {p.Step}/{p.StepCount}"
                    : $"{Stages[current].Title}: starting ({totals[current]} step{(totals[current] == 1 ? "" : "s")})";
            if (line != last)
            {
                Console.WriteLine(line);
                last = line;
            }
            if (IsFinished(status))
                return status;
            await Task.Delay(PollInterval, cancellationToken);
        }
    }

    private static async Task<GenerationStatus> PollAsync(GenerationService service, DurableTaskClient client, string id, CancellationToken cancellationToken) =>
        await service.GetStatusAsync(client, id, cancellationToken) ?? throw new InvalidOperationException($"Generation '{id}' disappeared.");

    public static bool IsFinished(GenerationStatus status) => status.RuntimeStatus is "Completed" or "Failed" or "Terminated";
}
