using System.Globalization;
using System.Text;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>
/// What the host and Durable's Azure Storage backend add to a small image's latency, as figures (docs/performance.md):
/// HTTP start → Stage C's activity starting, and the gaps between the three stage activities, back to back and after an
/// idle spell longer than the backend's longest queue-polling back-off. Nothing here is a timed assertion.
/// </summary>
[Collection(HostCollection.Name)]
public sealed class LatencyTests(HostFixture host)
{
    private sealed record Sample(string Label, double StartToStageC, double CToB, double BToA, double AToDone, double DoneToAnswer, double Stages, double Total);

    private async Task<Sample> MeasureAsync(string label, int seed)
    {
        var sent = DateTimeOffset.UtcNow;
        var done = await host.JsonAsync(HttpMethod.Post, "generations?wait=60", "StartGeneration", GenerationApiTests.Small("a tern over the sea", seed));
        var answered = DateTimeOffset.UtcNow;
        Assert.Equal("Completed", done.Text("status"));
        var events = Timeline.Of(host.Host.AllEntries, done.Text("id"));
        DateTimeOffset At(string function, string @event) => Timeline.First(events, function, @event).At;
        var (cStart, cEnd) = (At("StageC", "started"), At("StageC", "completed"));
        var (bStart, bEnd) = (At("StageB", "started"), At("StageB", "completed"));
        var (aStart, aEnd) = (At("StageA", "started"), At("StageA", "completed"));
        var orchestrationDone = events.Last(e => e.Function == "GenerateImage" && e.Event == "completed").At;
        // Each stage starts after the one before it ended, all between the request and its answer.
        Assert.True(sent < cStart && cEnd <= bStart && bEnd <= aStart && aEnd <= orchestrationDone && orchestrationDone <= answered,
            string.Join("; ", events.Select(e => $"{e.At:HH:mm:ss.fff} {e.Function} {e.Event}")));
        static double S(TimeSpan t) => Math.Round(t.TotalSeconds, 2);
        return new Sample(label, S(cStart - sent), S(bStart - cEnd), S(aStart - bEnd), S(orchestrationDone - aEnd), S(answered - orchestrationDone),
            S((cEnd - cStart) + (bEnd - bStart) + (aEnd - aStart)), S(answered - sent));
    }

    [Fact]
    public async Task TheOrchestrationOverheadOfASmallImageIsMeasured()
    {
        await host.EnsureRunningAsync();
        await host.WaitUntilIdleAsync(TimeSpan.FromMinutes(2));
        var polling = TimeSpan.Parse(EffectiveSettings.Durable(host.Host.Log.Entries).Options["storageProvider"].Text("maxQueuePollingInterval"), CultureInfo.InvariantCulture);

        var samples = new List<Sample>();
        for (int i = 0; i < 3; i++)
            samples.Add(await MeasureAsync($"back to back #{i + 1}", 700 + i));
        var idle = polling + TimeSpan.FromSeconds(5);
        await Task.Delay(idle, TestContext.Current.CancellationToken);
        samples.Add(await MeasureAsync($"after {idle.TotalSeconds:0} s idle", 710));

        var table = new StringBuilder()
            .AppendLine($"128² image, 2 + 2 steps, one host, Azurite; maxQueuePollingInterval {polling}; seconds")
            .AppendLine("| run | HTTP start → Stage C starts | C ends → B starts | B ends → A starts | A ends → orchestration done | done → HTTP answer | stage activities | HTTP total (?wait) |")
            .AppendLine("| --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var s in samples)
            table.AppendLine(string.Create(CultureInfo.InvariantCulture, $"| {s.Label} | {s.StartToStageC} | {s.CToB} | {s.BToA} | {s.AToDone} | {s.DoneToAnswer} | {s.Stages} | {s.Total} |"));
        Directory.CreateDirectory(Repository.ArtifactsFolder);
        File.WriteAllText(Path.Combine(Repository.ArtifactsFolder, "latency.md"), table.ToString());
        Timings.Note(table.ToString());
    }
}
