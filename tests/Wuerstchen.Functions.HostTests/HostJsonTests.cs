using System.Diagnostics;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>
/// host.json under the real host: the settings the design relies on take effect (one stage on the GPU at a time, one
/// queue message at a time, four partitions), and a setting the host would not honour is caught.
/// </summary>
[Collection(HostCollection.Name)]
public sealed class HostJsonTests(HostFixture host)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private async Task<HashSet<string>> FunctionsWithTriggerAsync(string type)
    {
        var names = new HashSet<string>();
        foreach (var function in (await host.Host.AdminAsync(HttpMethod.Get, "admin/functions"))!.AsArray())
        {
            if (function!["config"]!["bindings"]!.AsArray().Any(b => b.TextOrNull("type") == type))
                names.Add(function.Text("name"));
        }
        return names;
    }

    /// <summary>The intervals the host ran <paramref name="functions"/> in (Executing → Executed), from the current host's log.</summary>
    private (string Function, DateTimeOffset Start, DateTimeOffset End)[] Runs(IReadOnlySet<string> functions)
    {
        var open = new Dictionary<string, (string Function, DateTimeOffset Start)>();
        var runs = new List<(string, DateTimeOffset, DateTimeOffset)>();
        foreach (var entry in host.Host.Log.Entries)
        {
            if (QueueEvidence.ExecutingId(entry.Message) is { } started && functions.Contains(started.Function))
                open[started.Id] = (started.Function, entry.At);
            else if (QueueEvidence.ExecutedId(entry.Message) is { } id && open.Remove(id, out var run))
                runs.Add((run.Function, run.Start, entry.At));
        }
        return runs.ToArray();
    }

    private static int MaxOverlap(IEnumerable<(string Function, DateTimeOffset Start, DateTimeOffset End)> runs)
    {
        var edges = runs.SelectMany(r => new[] { (At: r.Start, Delta: 1), (At: r.End, Delta: -1) }).OrderBy(e => e.At).ThenBy(e => e.Delta);
        int current = 0, max = 0;
        foreach (var edge in edges)
            max = Math.Max(max, current += edge.Delta);
        return max;
    }

    [Fact]
    public async Task TheDurableAndQueueSettingsTheHostRunsWithAreThoseOfHostJson()
    {
        await host.EnsureRunningAsync();
        var entries = host.Host.Log.Entries;
        var (durable, hub) = EffectiveSettings.Durable(entries);
        Assert.Empty(EffectiveSettings.Differences("extensions.durableTask", HostJson.Durable, durable));
        Assert.Equal(host.Settings["WUERSTCHEN_TASK_HUB"], hub);
        Assert.Empty(EffectiveSettings.Differences("extensions.queues", HostJson.Queues, EffectiveSettings.Options(entries, "QueuesOptions")));
    }

    [Fact]
    public async Task AMisspeltOrUnusedHostJsonSettingIsDetected()
    {
        await host.EnsureRunningAsync();
        var entries = host.Host.Log.Entries;
        var durable = HostJson.Durable.DeepClone().AsObject();
        durable.Remove("maxConcurrentActivityFunctions");
        durable["maxConcurrentActivityFunction"] = 1;  // the host would ignore it and run ten activities at once
        var queues = HostJson.Queues.DeepClone().AsObject();
        queues["batchSize"] = 16;

        var problems = EffectiveSettings.Differences("extensions.durableTask", durable, EffectiveSettings.Durable(entries).Options)
            .Concat(EffectiveSettings.Differences("extensions.queues", queues, EffectiveSettings.Options(entries, "QueuesOptions"))).ToArray();

        Assert.Equal(2, problems.Length);
        Assert.Contains(problems, p => p.StartsWith("extensions.durableTask.maxConcurrentActivityFunction: not a setting the host knows", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("extensions.queues.batchSize: host.json says 16, the host runs with 1", StringComparison.Ordinal));
    }

    [Fact]
    public async Task OnlyOneActivityRunsAtATimeWhileABulkJobRunsTwoBatchesAtOnce()
    {
        await host.EnsureRunningAsync();
        Assert.Equal(1, HostJson.Durable.Int("maxConcurrentActivityFunctions"));
        Assert.Equal("2", host.Settings["Wuerstchen__Bulk__MaxParallelism"]);
        string jobId = "concurrency-" + Guid.NewGuid().ToString("N")[..10];
        var queue = new QueueClient(host.Azurite.ConnectionString, host.Settings["Wuerstchen__Bulk__QueueName"], new QueueClientOptions { MessageEncoding = HostJson.QueueMessageEncoding() });
        await queue.CreateIfNotExistsAsync(cancellationToken: Token);
        await queue.SendMessageAsync(QueueTests.Job(jobId, Enumerable.Range(0, 12).Select(i => (object)$"a moth {i}").ToArray()), Token);
        var done = await host.WaitForInstanceAsync($"bulk-{jobId}", HostFixture.InstanceEnded, TimeSpan.FromMinutes(4));
        Assert.Equal("Completed", done.Text("runtimeStatus"));

        // Two batches were in flight together (both sub-orchestrations started before either ended)...
        var entries = host.Host.Log.Entries;
        var first = Timeline.Of(entries, $"bulk-{jobId}-b00000");
        var second = Timeline.Of(entries, $"bulk-{jobId}-b00001");
        Assert.True(Timeline.First(second, "GenerateImage", "started").At < Timeline.First(first, "GenerateImage", "completed").At,
            "the bulk job did not run two batches at once, so this proves nothing about the activity limit");
        // ...yet the host never ran two activities at once.
        var activities = Runs(await FunctionsWithTriggerAsync("activityTrigger"));
        Assert.True(activities.Length >= 9, $"only {activities.Length} activity runs were logged");
        Assert.Equal(1, MaxOverlap(activities));
    }

    [Fact]
    public async Task TheQueueTriggerTakesOneMessageAtATime()
    {
        await host.EnsureRunningAsync();
        Assert.Equal((1, 0), (HostJson.Queues.Int("batchSize"), HostJson.Queues.Int("newBatchThreshold")));
        var queue = new QueueClient(host.Azurite.ConnectionString, host.Settings["Wuerstchen__Bulk__QueueName"], new QueueClientOptions { MessageEncoding = HostJson.QueueMessageEncoding() });
        await queue.CreateIfNotExistsAsync(cancellationToken: Token);
        // Each message is rejected (a bad job id) and the rejection written through a slowed store, so each run takes
        // a second or so: runs taken in one batch would overlap.
        host.StoreProxy.Delay = TimeSpan.FromMilliseconds(300);
        var ids = new List<string>();
        try
        {
            for (int i = 0; i < 3; i++)
                ids.Add((await queue.SendMessageAsync($"{{\"jobId\": \"Not A Valid Id {i}\", \"prompts\": [\"x\"]}}", Token)).Value.MessageId);
            foreach (string id in ids)
                await QueueEvidence.WaitForOutcomeAsync(host.Host, id, TimeSpan.FromMinutes(2));
        }
        finally
        {
            host.StoreProxy.Delay = TimeSpan.Zero;
        }
        var runs = ids.Select(id => QueueEvidence.Invocations(host.Host, id).Single()).ToArray();
        Assert.All(runs, r => Assert.Equal("Succeeded", r.Outcome));
        var intervals = Runs(new HashSet<string> { QueueEvidence.Function }).Where(r => r.Start >= runs.Min(x => x.At).AddSeconds(-1)).ToArray();
        Assert.True(intervals.Length >= 3 && intervals.All(r => r.End - r.Start > TimeSpan.FromMilliseconds(300)),
            $"the runs were too short to show anything: {string.Join(", ", intervals.Select(r => (r.End - r.Start).TotalMilliseconds))} ms");
        Assert.Equal(1, MaxOverlap(intervals));
    }

    [Fact]
    public async Task TheTaskHubHasThePartitionCountOfHostJson()
    {
        await host.EnsureRunningAsync();
        int partitions = HostJson.Durable["storageProvider"]!.Int("partitionCount");
        string hub = host.Settings["WUERSTCHEN_TASK_HUB"].ToLowerInvariant();

        var controlQueues = new List<string>();
        await foreach (var item in host.Queues.GetQueuesAsync(prefix: $"{hub}-control-", cancellationToken: Token))
            controlQueues.Add(item.Name);
        Assert.Equal(Enumerable.Range(0, partitions).Select(i => $"{hub}-control-{i:D2}"), controlQueues.Order());

        // The table partition manager's table: one row per partition, each owned by this host's worker.
        string table = host.Settings["WUERSTCHEN_TASK_HUB"] + "Partitions";
        var rows = new List<Azure.Data.Tables.TableEntity>();
        await foreach (var row in host.Tables.GetTableClient(table).QueryAsync<Azure.Data.Tables.TableEntity>(cancellationToken: Token))
            rows.Add(row);
        Assert.Equal(partitions, rows.Count);
        Assert.Single(rows.Select(r => r.GetString("CurrentOwner")).Distinct());
    }
}
