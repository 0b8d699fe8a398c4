using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>
/// Kill-and-restart on Durable's Azure Storage backend: SIGKILL to the host and its worker (nothing flushed, no shutdown),
/// then a new host over the same storage. Work in flight comes back when its queue message's visibility timeout
/// (host.json <c>workItemQueueVisibilityTimeout</c>) runs out.
/// </summary>
[Collection(HostCollection.Name)]
public sealed class DurabilityTests(HostFixture host)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;
    private static readonly TimeSpan Recovery = TimeSpan.FromMinutes(6);

    private async Task<HashSet<string>> BlobsAsync(string prefix) => (await host.ListAsync(prefix)).ToHashSet();

    private static string BulkBatch(string jobId, int batch) => $"bulk-{jobId}-b{batch:D5}";

    [Fact]
    public async Task AGenerationKilledInStageBAndABulkJobKilledMidFanOutBothFinishWithNothingLostOrDoubled()
    {
        await host.EnsureRunningAsync();
        await host.WaitUntilIdleAsync(TimeSpan.FromMinutes(2));
        var imagesBefore = await BlobsAsync("images/");
        var stageBBefore = await BlobsAsync("latents/stage-b/");

        // A bulk job of six batches (four 128² prompts each)...
        string jobId = "killed-" + Guid.NewGuid().ToString("N")[..10];
        object[] prompts = Enumerable.Range(0, 24).Select(i => (object)$"bird number {i}").ToArray();
        var queue = new QueueClient(host.Azurite.ConnectionString, host.Settings["Wuerstchen__Bulk__QueueName"],
            new QueueClientOptions { MessageEncoding = HostJson.QueueMessageEncoding() });
        await queue.CreateIfNotExistsAsync(cancellationToken: Token);
        await queue.SendMessageAsync(QueueTests.Job(jobId, prompts), Token);
        string bulkInstance = $"bulk-{jobId}";
        await host.WaitForInstanceAsync(bulkInstance, i => i["customStatus"].Prop("completedBatches")?.GetValue<int>() >= 1, TimeSpan.FromMinutes(3));

        // ...and a single generation whose Stage B takes a while.
        var started = await host.JsonAsync(HttpMethod.Post, "generations", "StartGeneration",
            new { prompt = "a slow heron", width = 1024, height = 1024, priorSteps = 2, decoderSteps = 40, seed = 17 }, HttpStatusCode.Accepted);
        string id = started.Text("id");
        await host.PollAsync($"generations/{id}", "GetGeneration",
            s => s["progress"] is { } p && p.TextOrNull("stage") == "StageB" && p.Int("step") >= 2, TimeSpan.FromMinutes(4), TimeSpan.FromMilliseconds(100));

        var bulk = (await host.InstanceAsync(bulkInstance))!;
        int completed = bulk["customStatus"].Prop("completedBatches")!.GetValue<int>(), total = bulk["customStatus"].Prop("totalBatches")!.GetValue<int>();
        Assert.True(bulk.Text("runtimeStatus") == "Running" && completed >= 1 && completed < total,
            $"precondition: the bulk job should be mid-fan-out when the host dies, but it is {bulk.ToJsonString()}");

        var restart = await host.KillAndRestartAsync();
        Timings.Record("restart after SIGKILL (host answering again)", restart);
        var clock = Stopwatch.StartNew();

        var done = await host.PollAsync($"generations/{id}", "GetGeneration", HostFixture.Ended, Recovery, TimeSpan.FromSeconds(1));
        Timings.Record("generation killed in Stage B: restart to completed", clock.Elapsed);
        Assert.True(done.Text("status") == "Completed", done.ToJsonString());
        Assert.Single(done.Items("images"));
        using (var image = await host.SendAsync(HttpMethod.Get, $"generations/{id}/images/0", "GetGenerationImage"))
        {
            var png = Png.Read(await image.Content.ReadAsByteArrayAsync(Token));
            Assert.Equal((1024, 1024), (png.Width, png.Height));
        }
        var entries = host.Host.AllEntries.ToArray();
        // Stage C ran once; Stage B ran again from its start after the restart; Stage A once.
        Assert.Equal((1, 2, 1), (Timeline.Starts(entries, id, "StageC"), Timeline.Starts(entries, id, "StageB"), Timeline.Starts(entries, id, "StageA")));

        var bulkDone = await host.WaitForInstanceAsync(bulkInstance, HostFixture.InstanceEnded, Recovery);
        Timings.Record("bulk job killed mid-fan-out: restart to completed", clock.Elapsed);
        Assert.True(bulkDone.Text("runtimeStatus") == "Completed", bulkDone.ToJsonString());
        var manifest = (await host.ReadTextAsync($"bulk/{jobId}/manifest.jsonl"))!.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal(Enumerable.Range(0, 24), manifest.Select(l => l.Int("index")));
        Assert.All(manifest, l => Assert.Equal("succeeded", l.Text("status")));
        var bulkImages = manifest.SelectMany(l => l.Items("images")).Select(i => i.GetValue<string>()).ToHashSet();
        Assert.Equal(24, bulkImages.Count);

        // Exactly one set of images per job and nothing else: the 24 of the bulk job and the generation's one; one
        // Stage B latents blob per batch and one for the generation.
        var newImages = (await BlobsAsync("images/")).Except(imagesBefore).ToHashSet();
        Assert.Superset(bulkImages, newImages);
        Assert.Single(newImages.Except(bulkImages));
        Assert.Equal(total + 1, (await BlobsAsync("latents/stage-b/")).Except(stageBBefore).Count());
        // Replays after the restart recomputed nothing a batch had finished: each batch ran each stage once, except the
        // one stage it had in flight when the host died (host.json lets several activities run at once), which ran again.
        entries = host.Host.AllEntries.ToArray();
        for (int batch = 0; batch < total; batch++)
        {
            string instance = BulkBatch(jobId, batch);
            int[] starts = [Timeline.Starts(entries, instance, "StageC"), Timeline.Starts(entries, instance, "StageB"), Timeline.Starts(entries, instance, "StageA")];
            Assert.True(starts.All(n => n is 1 or 2) && starts.Sum() <= 4, $"batch {batch}: stage starts C/B/A {string.Join('/', starts)}");
        }
    }

    [Fact]
    public async Task AFineTuneKilledMidChunkResumesFromItsLastCheckpointToTheWeightsOfAnUninterruptedRun()
    {
        await host.EnsureRunningAsync();
        var baseline = await host.BaselineFineTune.Value;
        Assert.True(baseline.Text("status") == "Completed", baseline.ToJsonString());
        await host.WaitUntilIdleAsync(TimeSpan.FromMinutes(2));

        const string runId = "killed-mid-chunk";
        const int chunk = FineTunes.TotalSteps / 2;
        int from = host.Host.Log.Count;
        await host.JsonAsync(HttpMethod.Post, "finetunes", "StartFineTune", FineTunes.Request(runId, stepsPerChunk: chunk), HttpStatusCode.Accepted);

        // The first chunk's length, from the host's log, tells when the second one is well under way.
        bool ChunkStarted(LogEntry e) => e.Message.StartsWith($"{runId}: Function 'TrainFineTuneChunk (Activity)' started", StringComparison.Ordinal);
        var firstStart = await host.Host.Log.WaitForAsync(ChunkStarted, TimeSpan.FromMinutes(3), "the first training chunk", from);
        var firstEnd = await host.Host.Log.WaitForAsync(e => e.Message.StartsWith($"{runId}: Function 'TrainFineTuneChunk (Activity)' completed", StringComparison.Ordinal),
            TimeSpan.FromMinutes(3), "the end of the first training chunk", firstStart.Sequence);
        var secondStart = await host.Host.Log.WaitForAsync(ChunkStarted, TimeSpan.FromMinutes(3), "the second training chunk", firstEnd.Sequence);
        await Task.Delay((firstEnd.At - firstStart.At) * 0.4, Token);

        Assert.NotNull(await host.ReadTextAsync($"training/runs/{runId}/checkpoints/{chunk:D8}/manifest.json"));
        Assert.True(host.Host.Log.Entries.Skip(secondStart.Sequence).All(e => !e.Message.StartsWith($"{runId}: Function 'TrainFineTuneChunk (Activity)' completed", StringComparison.Ordinal)),
            "precondition: the second chunk should still be training when the host dies");
        await host.KillAndRestartAsync();

        var status = await host.PollAsync($"finetunes/{runId}", "GetFineTune", HostFixture.Ended, Recovery, TimeSpan.FromSeconds(1));
        Assert.True(status.Text("status") == "Completed", status.ToJsonString());
        // The second chunk ran twice: killed half-way, then again after the restart from the checkpoint of step 12.
        Assert.Equal(3, Timeline.Starts(host.Host.AllEntries, runId, "TrainFineTuneChunk"));
        Assert.Equal(1, Timeline.Starts(host.Host.Log.Entries, runId, "TrainFineTuneChunk"));
        Assert.Contains(host.Host.Log.Entries, e => e.Message.Contains($"Run {runId}: resuming at step {chunk}", StringComparison.Ordinal));

        // Bit for bit the weights, EMA and optimizer state of the run that was never interrupted, and the same loss curve.
        foreach (string file in new[] { "raw.safetensors", "ema.safetensors", "optimizer.safetensors" })
        {
            var differences = Safetensors.Differences(
                await host.ReadBytesAsync($"training/runs/{FineTunes.BaselineRunId}/checkpoints/{FineTunes.TotalSteps:D8}/{file}"),
                await host.ReadBytesAsync($"training/runs/{runId}/checkpoints/{FineTunes.TotalSteps:D8}/{file}"));
            Assert.True(differences.Count == 0, $"{file}: {differences.Count} tensor(s) differ from the uninterrupted run's, e.g. {string.Join(", ", differences.Take(3))}");
        }
        string Losses(string text) => string.Join("\n", text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => JsonNode.Parse(l)!).Select(p => $"{p.Int("step")} {p["loss"]?.ToJsonString()}"));
        Assert.Equal(Losses((await host.ReadTextAsync($"training/runs/{FineTunes.BaselineRunId}/loss.jsonl"))!),
            Losses((await host.ReadTextAsync($"training/runs/{runId}/loss.jsonl"))!));
    }
}
