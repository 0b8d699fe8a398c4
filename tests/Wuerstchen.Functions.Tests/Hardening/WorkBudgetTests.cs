using System.Text;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Workflows.Bulk;

namespace Wuerstchen.Functions.Tests.Hardening;

/// <summary>Each field within its limit, their product not: a work budget per request and per bulk job.</summary>
public sealed class WorkBudgetTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ARequestOverTheWorkBudgetIsABadRequestThatStatesItsCostAndTheLimit()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        string body = HttpRequests.Json(new { prompt = "x", images = 4, width = 2048, height = 2048, priorSteps = 200, decoderSteps = 100 });

        var result = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body), environment.Client, Token);

        var problem = Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(result).Value);
        string error = Assert.Single(problem.Errors["work"]);
        Assert.Contains("5,033,164,800 pixel-steps", error);
        Assert.Contains("4 image(s) × 2048×2048 px × (200 Stage C + 100 Stage B steps)", error);
        Assert.Contains("2,000,000,000", error);
        await foreach (var _ in environment.Client.GetAllInstancesAsync())
            Assert.Fail("a request over budget started");
    }

    [Fact]
    public async Task TheBudgetIsASetting()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: new Dictionary<string, string?> { ["Wuerstchen:Limits:MaxWorkPerRequest"] = "100000" });
        string small = HttpRequests.Json(new { prompt = "x", width = 128, height = 128, priorSteps = 2, decoderSteps = 2 });
        string larger = HttpRequests.Json(new { prompt = "x", width = 128, height = 256, priorSteps = 2, decoderSteps = 2 });

        Assert.Equal(202, HttpRequests.StatusOf(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", small), environment.Client, Token)));
        var refused = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", larger), environment.Client, Token);
        Assert.Contains("131,072 pixel-steps", Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(refused).Value).Errors["work"][0]);
    }

    private static readonly Dictionary<string, string?> SmallJobBudget = new() { ["Wuerstchen:Bulk:MaxWorkPerJob"] = "200000" };

    [Fact]
    public async Task ABulkJobOverItsBudgetIsRejectedAtIntakeNamingTheCost()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: SmallJobBudget);
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        var settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2 };

        var within = await intake.AcceptAsync(environment.Client, HttpRequests.Json(new { jobId = "three", settings, prompts = new[] { "a", "b", "c" } }), "m3", Token);
        var over = await intake.AcceptAsync(environment.Client, HttpRequests.Json(new { jobId = "four", settings, prompts = new[] { "a", "b", "c", "d" } }), "m4", Token);

        Assert.Equal(IntakeDisposition.Started, within.Disposition);
        Assert.Equal(IntakeDisposition.Rejected, over.Disposition);
        Assert.Contains("262,144 pixel-steps over its 4 valid prompts; the limit is 200,000", over.Reason);
    }

    [Fact]
    public async Task ABulkPromptFileOverItsBudgetEndsInAManifestThatRejectsEveryPrompt()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: SmallJobBudget);
        var activities = environment.Services.GetRequiredService<BulkActivities>();
        await environment.Store.WriteAsync("inputs/big.jsonl", new MemoryStream(Encoding.UTF8.GetBytes("\"a\"\n\"b\"\n\"c\"\n\"d\"\n")), cancellationToken: Token);
        var settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2 };
        await environment.Store.WriteAsync(BulkBlobs.Request("big"), new MemoryStream(Encoding.UTF8.GetBytes(HttpRequests.Json(new { jobId = "big", settings, promptsBlob = "inputs/big.jsonl" }))), cancellationToken: Token);

        var plan = await activities.PlanAsync("big", Token);
        var summary = await activities.WriteManifestAsync(new BulkManifestInput("big", []), Token);

        Assert.Equal(0, plan.BatchCount);
        Assert.Equal((4, 4), (summary.Total, summary.Rejected));
        Assert.All(await BulkManifestWriter.ReadAsync(environment.Store, "big", Token), e => Assert.Contains("the limit is 200,000", e.Error));
    }
}
