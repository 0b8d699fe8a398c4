using System.Text;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Workflows.Bulk;

namespace Wuerstchen.Functions.Tests.Hardening;

/// <summary>Limits enforced while reading, before the work (or the memory) they protect.</summary>
public sealed class ReadLimitTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string Timesteps(int count) =>
        "{\"prompt\": \"x\", \"priorTimesteps\": [" + string.Join(",", Enumerable.Range(0, count).Select(i => i == count - 1 ? "0" : "0.5")) + "]}";

    [Fact]
    public async Task ABodyOverTheLimitIsRefusedFromItsLengthOrAfterTheLimitWhenItHasNone()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        string huge = Timesteps(5_000_000);

        var declared = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", huge), environment.Client, Token);
        Assert.Equal(413, HttpRequests.StatusOf(declared));

        var chunked = HttpRequests.Make("POST", "/api/generations", huge);
        chunked.ContentLength = null;
        var counting = new CountingStream(chunked.Body);
        chunked.Body = counting;
        var refused = await environment.Http.Start(chunked, environment.Client, Token);
        Assert.Equal(413, HttpRequests.StatusOf(refused));
        Assert.Contains("1048576 bytes", ((ProblemDetails)((ObjectResult)refused).Value!).Detail);
        Assert.True(counting.BytesRead <= (1 << 20) + (1 << 16), $"{counting.BytesRead} bytes were read of a body refused at 1 MiB");
    }

    [Fact]
    public async Task AnArrayStopsBeingReadAtItsStructuralLimit()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);

        var result = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", Timesteps(5000)), environment.Client, Token);

        var problem = Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(result).Value);
        Assert.Contains("more than 4096 items", Assert.Single(problem.Errors["priorTimesteps"]));
    }

    [Fact]
    public async Task InlinePromptsAreCappedByTheBulkSetting()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: new Dictionary<string, string?> { ["Wuerstchen:Bulk:MaxPrompts"] = "3" });
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();

        var outcome = await intake.AcceptAsync(environment.Client, HttpRequests.Json(new { jobId = "four", prompts = new[] { "a", "b", "c", "d" } }), "m-four", Token);

        Assert.Equal(IntakeDisposition.Rejected, outcome.Disposition);
        Assert.Contains("1 … 3 prompts", outcome.Reason);
        Assert.True(await environment.Store.ExistsAsync(BulkBlobs.Rejected("m-four"), Token));
    }

    [Fact]
    public async Task APromptFileOverTheLimitIsRejectedAtIntakeWithARecord()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: new Dictionary<string, string?> { ["Wuerstchen:Bulk:MaxPrompts"] = "3" });
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        await environment.Store.WriteAsync("inputs/four.jsonl", new MemoryStream(Encoding.UTF8.GetBytes("\"a\"\n\n\"b\"\n  \n\"c\"\n\"d\"")), cancellationToken: Token);

        var outcome = await intake.AcceptAsync(environment.Client, HttpRequests.Json(new { jobId = "file-four", promptsBlob = "inputs/four.jsonl" }), "m-file", Token);

        Assert.Equal(IntakeDisposition.Rejected, outcome.Disposition);
        Assert.Contains("more than 3 prompts", outcome.Reason);
        Assert.True(await environment.Store.ExistsAsync(BulkBlobs.Rejected("m-file"), Token));
        await foreach (var _ in environment.Client.GetAllInstancesAsync())
            Assert.Fail("a job over the limit started");
    }

    [Fact]
    public async Task APromptFileThatGrowsPastTheLimitAfterIntakeEndsInARejectedManifestNotAFailedPlan()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: new Dictionary<string, string?> { ["Wuerstchen:Bulk:MaxPrompts"] = "3" });
        var activities = environment.Services.GetRequiredService<BulkActivities>();
        await environment.Store.WriteAsync("inputs/grown.jsonl", new MemoryStream(Encoding.UTF8.GetBytes("\"a\"\n\"b\"\n\"c\"\n\"d\"\n")), cancellationToken: Token);
        await environment.Store.WriteAsync(BulkBlobs.Request("grown"), new MemoryStream(Encoding.UTF8.GetBytes(HttpRequests.Json(new { jobId = "grown", promptsBlob = "inputs/grown.jsonl" }))), cancellationToken: Token);

        var plan = await activities.PlanAsync("grown", Token);
        var summary = await activities.WriteManifestAsync(new BulkManifestInput("grown", []), Token);

        Assert.Equal(0, plan.BatchCount);
        Assert.Equal((1, 0, 0, 1), (summary.Total, summary.Succeeded, summary.Failed, summary.Rejected));
        var entry = Assert.Single(await BulkManifestWriter.ReadAsync(environment.Store, "grown", Token));
        Assert.Contains("more than 3 prompts", entry.Error);
    }

    private sealed class CountingStream(Stream inner) : Stream
    {
        public long BytesRead { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) { int n = inner.Read(buffer, offset, count); BytesRead += n; return n; }
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) { int n = await inner.ReadAsync(buffer, cancellationToken); BytesRead += n; return n; }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
