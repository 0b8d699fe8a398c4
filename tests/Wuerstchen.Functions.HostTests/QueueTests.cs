using System.Text;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>The queue-triggered bulk generation under the real host: the host.json encoding, rejections, retries and the poison queue.</summary>
[Collection(HostCollection.Name)]
public sealed class QueueTests(HostFixture host)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;
    private static readonly TimeSpan JobTimeout = TimeSpan.FromMinutes(4);

    private string QueueName => host.Settings["Wuerstchen__Bulk__QueueName"];

    /// <summary>The bulk queue as a producer sees it, encoding messages as host.json's <c>extensions.queues.messageEncoding</c> says.</summary>
    private QueueClient Queue(string? name = null, QueueMessageEncoding? encoding = null) =>
        new(host.Azurite.ConnectionString, name ?? QueueName, new QueueClientOptions { MessageEncoding = encoding ?? HostJson.QueueMessageEncoding() });

    public static string Job(string jobId, params object[] prompts) => Json.Serialize(new
    {
        jobId,
        settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 300 },
        prompts,
    });

    private async Task<string> SendAsync(string message, QueueClient? queue = null)
    {
        queue ??= Queue();
        await queue.CreateIfNotExistsAsync(cancellationToken: Token);
        return (await queue.SendMessageAsync(message, Token)).Value.MessageId;
    }

    /// <summary>The manifest's lines once the job has written it; each image listed must exist, and none may appear twice.</summary>
    private async Task<JsonNode[]> ManifestAsync(string jobId)
    {
        string text = await host.WaitForBlobAsync($"bulk/{jobId}/manifest.jsonl", JobTimeout);
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToArray();
        var images = lines.SelectMany(l => l.Items("images")).Select(i => i.GetValue<string>()).ToArray();
        Assert.Equal(images.Length, images.Distinct().Count());
        foreach (string image in images)
            Assert.True(await host.Store.GetBlobClient(image).ExistsAsync(Token), $"{image} is in the manifest but not in the store");
        return lines;
    }

    [Fact]
    public async Task ABulkJobInTheEncodingHostJsonDeclaresProducesItsImagesAndManifest()
    {
        await host.EnsureRunningAsync();
        string jobId = "queue-" + Guid.NewGuid().ToString("N")[..10];
        object[] prompts = ["a fox", "a hare", "a heron", new { prompt = "a wide owl", width = 256 }, "a wren"];
        string messageId = await SendAsync(Job(jobId, prompts));

        var manifest = await ManifestAsync(jobId);

        Assert.Equal([0, 1, 2, 3, 4], manifest.Select(l => l.Int("index")));
        Assert.All(manifest, l => Assert.Equal("succeeded", l.Text("status")));
        Assert.All(manifest, l => Assert.Single(l.Items("images")));
        Assert.Equal(256, manifest[3].Int("width"));
        var summary = JsonNode.Parse((await host.ReadTextAsync($"bulk/{jobId}/summary.json"))!);
        Assert.Equal(5, summary.Int("succeeded"));
        var runs = QueueEvidence.Invocations(host.Host, messageId);
        Assert.Equal([(1, "Succeeded")], runs.Select(r => (r.DequeueCount, r.Outcome)));
    }

    [Fact]
    public async Task AMalformedMessageIsRecordedAsRejectedOnceAndNeverRetried()
    {
        await host.EnsureRunningAsync();
        string text = "not json at all " + Guid.NewGuid().ToString("N");
        string messageId = await SendAsync(text);

        string record = await host.WaitForBlobAsync($"bulk/rejected/{messageId}.json", JobTimeout);
        Assert.Contains("JSON", JsonNode.Parse(record).Text("reason"));
        await QueueEvidence.WaitForOutcomeAsync(host.Host, messageId, TimeSpan.FromSeconds(30));

        // Consumed: gone from the queue (an invisible message waiting for a retry would still be counted), never poisoned.
        Assert.Equal(0, (await Queue().GetPropertiesAsync(Token)).Value.ApproximateMessagesCount);
        Assert.False(await QueueEvidence.InPoisonQueueAsync(host.Queues, QueueName, text, Token));
        Assert.Equal([(1, "Succeeded")], QueueEvidence.Invocations(host.Host, messageId).Select(r => (r.DequeueCount, r.Outcome)));
    }

    [Fact]
    public async Task AMessageNotInTheDeclaredEncodingGoesToThePoisonQueueWithoutReachingTheApp()
    {
        await host.EnsureRunningAsync();
        Assert.Equal(QueueMessageEncoding.Base64, HostJson.QueueMessageEncoding());
        string marker = "plain-" + Guid.NewGuid().ToString("N")[..8];
        string messageId = await SendAsync($"{{ \"jobId\": \"{marker}\" }} is not base64", Queue(encoding: QueueMessageEncoding.None));

        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!await QueueEvidence.InPoisonQueueAsync(host.Queues, QueueName, marker, Token))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"message {messageId} did not reach {QueueName}-poison within 60 s (log: {host.Host.Log.Path})");
            await Task.Delay(500, Token);
        }
        Assert.Empty(QueueEvidence.Invocations(host.Host, messageId));
    }

    [Fact]
    public async Task AMessageWhoseProcessingFailsTransientlyIsRetriedAndMakesEachImageOnce()
    {
        await host.EnsureRunningAsync();
        string jobId = "transient-" + Guid.NewGuid().ToString("N")[..10];
        int from = host.Host.Log.Count;
        host.StoreProxy.Down();
        string messageId;
        try
        {
            messageId = await SendAsync(Job(jobId, "a storm petrel", "a gannet"));
            // The intake cannot reach the app's store; it throws and the host abandons the message for a retry.
            var failed = await QueueEvidence.WaitForOutcomeAsync(host.Host, messageId, TimeSpan.FromMinutes(2), from);
            Assert.Equal((1, "Failed"), (failed.DequeueCount, failed.Outcome));
        }
        finally
        {
            host.StoreProxy.Up();
        }

        // host.json's visibilityTimeout later, the host delivers it again and the job runs.
        var manifest = await ManifestAsync(jobId);
        Assert.All(manifest, l => Assert.Equal("succeeded", l.Text("status")));
        Assert.Equal(2, manifest.SelectMany(l => l.Items("images")).Count());
        Assert.Equal([(1, "Failed"), (2, "Succeeded")], QueueEvidence.Invocations(host.Host, messageId).Select(r => (r.DequeueCount, r.Outcome)));
        Assert.Null(await host.ReadTextAsync($"bulk/rejected/{messageId}.json"));
        Assert.False(await QueueEvidence.InPoisonQueueAsync(host.Queues, QueueName, jobId, Token));
        // Each batch decoded its images once.
        var decodes = host.Host.AllEntries.Count(e => e.Message.StartsWith($"bulk-{jobId}-b", StringComparison.Ordinal) && e.Message.Contains("Function 'StageA (Activity)' started"));
        Assert.Equal(1, decodes);
    }
}
