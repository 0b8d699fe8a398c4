using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>
/// The retraining timer under the real host, run on demand through the admin API (<c>POST /admin/functions/{name}</c>),
/// over the two datasets the host's settings schedule (<see cref="TimerDatasets"/>).
/// </summary>
[Collection(HostCollection.Name)]
public sealed class TimerTests(HostFixture host)
{
    private const string ScheduleLog = "training/schedule-log.jsonl";
    private static readonly TimeSpan RunTimeout = TimeSpan.FromMinutes(5);

    private async Task<JsonNode[]> DecisionsAsync() =>
        ((await host.ReadTextAsync(ScheduleLog)) ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();

    /// <summary>Runs the timer now and returns the decisions it appended (one per scheduled dataset), by dataset name.</summary>
    private async Task<Dictionary<string, JsonNode>> TickAsync()
    {
        int before = (await DecisionsAsync()).Length;
        await host.Host.AdminAsync(HttpMethod.Post, "admin/functions/RetrainOnNewCaptions", new { input = "" });
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var decisions = await DecisionsAsync();
            if (decisions.Length >= before + 2)
                return decisions.Skip(before).ToDictionary(d => d.Text("dataset"));
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(1), $"the timer recorded {decisions.Length - before} decision(s) within a minute (log: {host.Host.Log.Path})");
            await Task.Delay(250);
        }
    }

    private async Task<JsonNode> WaitForRunAsync(JsonNode decision)
    {
        var instance = await host.WaitForInstanceAsync(decision.Text("instanceId"), HostFixture.InstanceEnded, RunTimeout);
        Assert.True(instance.Text("runtimeStatus") == "Completed", instance.ToJsonString());
        return instance;
    }

    [Fact]
    public async Task TheTimerRetrainsADatasetWhoseCaptionsChangedAndSkipsAnUnchangedOne()
    {
        await host.EnsureRunningAsync();
        await FineTunes.WriteDatasetAsync(host, TimerDatasets.Prefix(TimerDatasets.Unchanged));
        await FineTunes.WriteDatasetAsync(host, TimerDatasets.Prefix(TimerDatasets.Changing));

        // First tick: neither dataset has a published model yet; both are trained.
        var first = await TickAsync();
        Assert.All(first.Values, d => Assert.Equal("started", d.Text("action")));
        foreach (var decision in first.Values)
            await WaitForRunAsync(decision);

        // One caption changes.
        await host.WriteAsync(TimerDatasets.Prefix(TimerDatasets.Changing) + "red-horizontal.txt", Encoding.UTF8.GetBytes("crimson horizontal stripes on white"));
        var second = await TickAsync();

        var unchanged = second[TimerDatasets.Unchanged];
        Assert.Equal("skipped", unchanged.Text("action"));
        Assert.StartsWith("unchanged: model version", unchanged.Text("reason"));
        var changed = second[TimerDatasets.Changing];
        Assert.Equal("started", changed.Text("action"));
        Assert.Contains("images or captions changed since model version", changed.Text("reason"));
        Assert.NotEqual(first[TimerDatasets.Changing].Text("datasetVersion"), changed.Text("datasetVersion"));
        await WaitForRunAsync(changed);

        // The retrain is published as a new version of that dataset, trained on the new captions.
        var models = await host.JsonAsync(HttpMethod.Get, "models", "ListModels");
        var ofChanging = models.Items("models").Where(m => m.Text("datasetKey") == changed.Text("datasetKey")).ToArray();
        Assert.Equal(2, ofChanging.Length);
        Assert.Contains(ofChanging, m => m.Text("datasetVersion") == changed.Text("datasetVersion"));
        Assert.Single(models.Items("models"), m => m.Text("datasetKey") == unchanged.Text("datasetKey"));
    }
}
