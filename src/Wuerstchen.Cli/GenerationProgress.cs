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

    /// <summary>
    /// Plain lines for a log: every step of every stage once, in order — steps finished between two polls are printed
    /// when the poll sees them, and a stage that has ended is printed to its last step — and no raw status words.
    /// </summary>
    private static async Task<GenerationStatus> FollowPlainAsync(GenerationService service, DurableTaskClient client, string id, int[] totals, CancellationToken cancellationToken)
    {
        int stage = -1, printed = 0;
        bool waiting = false;
        while (true)
        {
            var status = await PollAsync(service, client, id, cancellationToken);
            bool completed = status.RuntimeStatus == "Completed";
            int current = completed ? Stages.Length : Array.FindIndex(Stages, s => s.Stage == status.Stage);
            if (current < 0 && status.RuntimeStatus == "Pending" && !waiting)
            {
                Console.WriteLine("Waiting to start…");
                waiting = true;
            }
            while (stage < current)
            {
                if (stage >= 0)
                    PrintSteps(stage, printed, totals[stage]); // the stage has ended: all its steps are done
                stage++;
                printed = 0;
                if (stage < Stages.Length)
                    Console.WriteLine($"{Stages[stage].Title}: starting ({totals[stage]} step{(totals[stage] == 1 ? "" : "s")})");
            }
            if (stage >= 0 && stage < Stages.Length && status.Progress is { } p && p.Stage == Stages[stage].Stage && p.Step > printed)
            {
                totals[stage] = p.StepCount;
                PrintSteps(stage, printed, p.Step);
                printed = p.Step;
            }
            if (completed)
                Console.WriteLine("Done.");
            if (IsFinished(status))
                return status;
            await Task.Delay(PollInterval, cancellationToken);
        }

        void PrintSteps(int index, int after, int upTo)
        {
            for (int step = after + 1; step <= upTo; step++)
                Console.WriteLine($"{Stages[index].Title}: step {step}/{totals[index]}");
        }
    }

    private static async Task<GenerationStatus> PollAsync(GenerationService service, DurableTaskClient client, string id, CancellationToken cancellationToken) =>
        await service.GetStatusAsync(client, id, cancellationToken) ?? throw new InvalidOperationException($"Generation '{id}' disappeared.");

    public static bool IsFinished(GenerationStatus status) => status.RuntimeStatus is "Completed" or "Failed" or "Terminated";
}
