using System.Security.Claims;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Wuerstchen.Functions.Generation;

namespace Wuerstchen.Functions.Tests.Hardening;

/// <summary>Idempotency keys: scoped to the caller, and one orchestration however many callers race with one key.</summary>
public sealed class IdempotencyTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string Body(string prompt = "a red kite") => HttpRequests.Json(new { prompt, width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 4 });

    private static Microsoft.AspNetCore.Http.HttpRequest Post(string key, string? keyId, string? body = null)
    {
        var request = HttpRequests.Make("POST", "/api/generations", body ?? Body(), new Dictionary<string, string> { [Wuerstchen.Api.GenerationApi.IdempotencyHeader] = key });
        if (keyId is not null)
            request.HttpContext.User = new ClaimsPrincipal(new ClaimsIdentity([new Claim(Wuerstchen.Api.CallerIdentity.KeyIdClaim, keyId)], "WebJobsAuthLevel"));
        return request;
    }

    private static (string Id, bool Existing) Accepted(IActionResult result)
    {
        var accepted = Assert.IsType<AcceptedResult>(result);
        var value = accepted.Value!;
        return ((string)value.GetType().GetProperty("Id")!.GetValue(value)!, (bool)value.GetType().GetProperty("Existing")!.GetValue(value)!);
    }

    [Fact]
    public async Task TheSameKeyFromTwoCallersStartsTwoGenerationsAndFromOneCallerAttaches()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);

        var alice = Accepted(await environment.Http.Start(Post("shared-key", "alice"), environment.Client, Token));
        var mallory = Accepted(await environment.Http.Start(Post("shared-key", "mallory", Body("something else")), environment.Client, Token));
        var aliceAgain = Accepted(await environment.Http.Start(Post("shared-key", "alice"), environment.Client, Token));

        Assert.NotEqual(alice.Id, mallory.Id);
        Assert.False(mallory.Existing, "another caller's key attached to alice's generation");
        Assert.Equal((alice.Id, true), aliceAgain);
        // Without an identity the key is shared by every anonymous caller (documented), and distinct from alice's.
        var anonymous = Accepted(await environment.Http.Start(Post("shared-key", null), environment.Client, Token));
        Assert.NotEqual(alice.Id, anonymous.Id);
    }

    [Fact]
    public async Task AKeyThatIsNotPrintableAsciiIsABadRequest()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        var result = await environment.Http.Start(Post("line\nbreak", null), environment.Client, Token);
        Assert.Contains(Wuerstchen.Api.GenerationApi.IdempotencyHeader, Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(result).Value).Errors.Keys);
    }

    [Fact]
    public async Task FiftyParallelPostsWithOneKeyMakeOneOrchestrationAndEveryCallerIsToldTheTruth()
    {
        const int callers = 50;
        await using var environment = await TestEnvironment.StartAsync();
        using var start = new ManualResetEventSlim();
        var tasks = Enumerable.Range(0, callers).Select(i => Task.Run(async () =>
        {
            start.Wait(Token);
            // Every fifth caller sends a different body with the same key: it must hear 409, never attach.
            string body = i % 5 == 4 ? Body("a different request") : Body();
            return (Index: i, Result: await environment.Http.Start(Post("race-key", "caller", body), environment.Client, Token));
        }, Token)).ToArray();
        start.Set();
        var results = await Task.WhenAll(tasks);

        var instances = new List<OrchestrationMetadata>();
        await foreach (var instance in environment.Client.GetAllInstancesAsync(new OrchestrationQuery { FetchInputsAndOutputs = false }))
            instances.Add(instance);
        var orchestration = Assert.Single(instances);

        // Whichever body wrote the plan first owns the key: its callers are told Started (one) or Existing (the rest), all
        // with the one instance id; every caller with the other body is told 409 and attaches to nothing.
        var groups = results.GroupBy(r => r.Index % 5 == 4).ToArray();
        var winners = Assert.Single(groups, g => g.Any(r => r.Result is AcceptedResult));
        var losers = Assert.Single(groups, g => g != winners);
        var accepted = winners.Select(r => Accepted(r.Result)).ToArray();
        int started = accepted.Count(a => !a.Existing);
        int conflicts = losers.Count(r => HttpRequests.StatusOf(r.Result) == 409);
        string line = $"concurrency: {callers} parallel POSTs with one key -> {instances.Count} orchestration; {started} told Started, {accepted.Length - started} Existing, {conflicts} Conflict (409); lost 0";
        Wuerstchen.Models.Tests.ReliabilityLog.Record(line);

        Assert.All(accepted, a => Assert.Equal(orchestration.InstanceId, a.Id));
        Assert.Equal(1, started);
        Assert.Equal(losers.Count(), conflicts);
        var done = await environment.Client.WaitForInstanceCompletionAsync(orchestration.InstanceId, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
    }
}
