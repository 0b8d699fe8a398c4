using System.Text;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;

namespace Wuerstchen.Functions.Tests;

public sealed class BulkGenerationTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly object Settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 500 };

    [Fact]
    public async Task AJobOfTenPromptsInTwoSizesCompletesWithAFullManifest()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        var prompts = new List<object>();
        for (int i = 0; i < 10; i++)
            prompts.Add(i % 2 == 0 ? $"prompt {i}" : new { prompt = $"wide prompt {i}", width = 256, negativePrompt = "blurry" });
        prompts.Add(new { prompt = "off the grid", width = 200 });
        string message = HttpRequests.Json(new { jobId = "job-ten", settings = Settings, prompts });

        var outcome = await intake.AcceptAsync(environment.Client, message, "message-1", Token);
        Assert.Equal(IntakeDisposition.Started, outcome.Disposition);
        var done = await environment.Client.WaitForInstanceCompletionAsync(BulkGenerateOrchestration.InstanceIdFor("job-ten"), getInputsAndOutputs: true, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);

        var summary = done.ReadOutputAs<BulkSummary>()!;
        Assert.Equal((11, 10, 0, 1), (summary.Total, summary.Succeeded, summary.Failed, summary.Rejected));
        var manifest = await BulkManifestWriter.ReadAsync(environment.Store, "job-ten", Token);
        Assert.Equal(Enumerable.Range(0, 11), manifest.Select(e => e.Index));
        foreach (var entry in manifest.Take(10))
        {
            Assert.Equal(BulkManifestWriter.Succeeded, entry.Status);
            Assert.Equal(entry.Index % 2 == 0 ? 128 : 256, entry.Width);
            Assert.Equal(500UL + 2 * (ulong)entry.Index, entry.Seed); // S + 2k: prompt k's Stage B stream is S + 2k + 1
            var image = Assert.Single(entry.Images);
            Assert.True(await environment.Store.ExistsAsync(image, Token), $"{image} is listed but missing");
        }
        Assert.Equal(10, manifest.Take(10).SelectMany(e => e.Images).Distinct().Count());
        Assert.Equal(BulkManifestWriter.Rejected, manifest[10].Status);
        Assert.Contains("width", manifest[10].Error);

        // Three batches of 128² prompts (5 prompts, batch size 3) and two of 256×128 ones.
        var plan = await environment.Services.GetRequiredService<Pipeline.Generation.BatchPlanStore>().ReadAllAsync(BulkBlobs.Plan("job-ten"), Token);
        Assert.Equal([3, 2, 3, 2], plan.Select(b => b.Items.Count));
    }

    [Fact]
    public async Task APromptFileInJsonLinesIsReadAndItsBadLinesAreReported()
    {
        await using var environment = await TestEnvironment.StartAsync();
        string lines = "\"a lighthouse\"\n{\"text\": \"a fox\", \"seed\": 7}\n\nnot json\n{\"negativePrompt\": \"no prompt\"}\n";
        await environment.Store.WriteAsync("inputs/prompts.jsonl", new MemoryStream(Encoding.UTF8.GetBytes(lines)), cancellationToken: Token);
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        string message = HttpRequests.Json(new { jobId = "job-file", settings = Settings, promptsBlob = "inputs/prompts.jsonl" });

        Assert.Equal(IntakeDisposition.Started, (await intake.AcceptAsync(environment.Client, message, "m", Token)).Disposition);
        var done = await environment.Client.WaitForInstanceCompletionAsync(BulkGenerateOrchestration.InstanceIdFor("job-file"), getInputsAndOutputs: true, Token);
        var manifest = await BulkManifestWriter.ReadAsync(environment.Store, "job-file", Token);

        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal(["succeeded", "succeeded", "rejected", "rejected"], manifest.Select(e => e.Status));
        Assert.Equal(7UL, manifest[1].Seed);
        Assert.Contains("line 4", manifest[2].Error);
        Assert.Contains("line 5", manifest[3].Error);
    }

    [Fact]
    public async Task ARepeatedMessageStartsNothingAndGeneratesNothingTwice()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        string message = HttpRequests.Json(new { jobId = "job-twice", settings = Settings, prompts = new[] { "one", "two" } });

        Assert.Equal(IntakeDisposition.Started, (await intake.AcceptAsync(environment.Client, message, "first", Token)).Disposition);
        Assert.Equal(IntakeDisposition.AlreadyKnown, (await intake.AcceptAsync(environment.Client, message, "redelivered", Token)).Disposition);
        await environment.Client.WaitForInstanceCompletionAsync(BulkGenerateOrchestration.InstanceIdFor("job-twice"), Token);
        Assert.Equal(IntakeDisposition.AlreadyKnown, (await intake.AcceptAsync(environment.Client, message, "late", Token)).Disposition);

        var images = new List<BlobItemInfo>();
        await foreach (var blob in environment.Store.ListAsync("images/", Token))
            images.Add(blob);
        Assert.Equal(2, images.Count);

        string different = HttpRequests.Json(new { jobId = "job-twice", settings = Settings, prompts = new[] { "three" } });
        var conflict = await intake.AcceptAsync(environment.Client, different, "reused-id", Token);
        Assert.Equal(IntakeDisposition.AlreadyKnown, conflict.Disposition);
    }

    public static TheoryData<string, string> MalformedMessages => new()
    {
        { "not json at all", "not JSON" },
        { "[1, 2]", "JSON object" },
        { "{\"jobId\": \"Bad Id\", \"prompts\": [\"x\"]}", "jobId" },
        { "{\"jobId\": \"ok\"}", "exactly one of prompts" },
        { "{\"jobId\": \"ok\", \"prompts\": [\"x\"], \"promptsBlob\": \"a.jsonl\"}", "exactly one of prompts" },
        { "{\"jobId\": \"ok\", \"prompts\": []}", "1 … 10000" },
        { "{\"jobId\": \"ok\", \"prompts\": [42]}", "prompts[0]" },
        { "{\"jobId\": \"ok\", \"prompts\": [\"x\"], \"colour\": 1}", "Unknown field(s): colour" },
        { "{\"jobId\": \"ok\", \"prompts\": [\"x\"], \"settings\": {\"width\": 1000}}", "width" },
        { "{\"jobId\": \"ok\", \"prompts\": [\"x\"], \"settings\": {\"priorModel\": \"nobody/nothing\"}}", "Unknown model" },
        { "{\"jobId\": \"ok\", \"promptsBlob\": \"inputs/missing.jsonl\"}", "does not exist" },
    };

    [Theory]
    [MemberData(nameof(MalformedMessages))]
    public async Task AMalformedMessageIsRecordedWithItsReasonAndNeverStarted(string message, string reason)
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();

        var outcome = await intake.AcceptAsync(environment.Client, message, "msg-42", Token);

        Assert.Equal(IntakeDisposition.Rejected, outcome.Disposition);
        Assert.Contains(reason, outcome.Reason);
        await using var record = await environment.Store.OpenReadAsync(BulkBlobs.Rejected("msg-42"), Token);
        string text = await new StreamReader(record).ReadToEndAsync(Token);
        Assert.Contains(reason.Split(' ')[0], text);
        await foreach (var _ in environment.Client.GetAllInstancesAsync())
            Assert.Fail("a malformed message started an orchestration");
    }

    [Fact]
    public async Task ATransientStorageFailureThrowsSoTheHostRetriesTheMessage()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, configure: services =>
        {
            services.AddSingleton<IBlobStore>(new UnavailableStore());
        });
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        string message = HttpRequests.Json(new { jobId = "job-transient", settings = Settings, prompts = new[] { "x" } });

        await Assert.ThrowsAsync<IOException>(() => intake.AcceptAsync(environment.Client, message, "m", Token));
        await foreach (var _ in environment.Client.GetAllInstancesAsync())
            Assert.Fail("nothing should have started");
    }
}
