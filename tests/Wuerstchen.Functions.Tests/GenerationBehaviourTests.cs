using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Tests;

public sealed class GenerationBehaviourTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string SmallRequest(string prompt = "a small red dragon", long seed = 21, int decoderSteps = 2) => HttpRequests.Json(new
    {
        prompt,
        width = 128,
        height = 256,
        images = 2,
        seed,
        priorSteps = 3,
        decoderSteps,
    });

    private static async Task<GenerationStatusResponse> CompleteAsync(TestEnvironment environment, IActionResult started)
    {
        string id = started switch
        {
            OkObjectResult { Value: GenerationStatusResponse done } => done.Id,
            AcceptedResult accepted => (string)accepted.Value!.GetType().GetProperty("Id")!.GetValue(accepted.Value)!,
            _ => throw new InvalidOperationException($"Unexpected start result {started.GetType().Name}."),
        };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        await environment.Client.WaitForInstanceCompletionAsync(id, timeout.Token);
        var status = Assert.IsType<OkObjectResult>(await environment.Http.Get(HttpRequests.Make("GET", $"/api/generations/{id}"), environment.Client, id, Token));
        return Assert.IsType<GenerationStatusResponse>(status.Value);
    }

    private static async Task<byte[]> ImageAsync(TestEnvironment environment, string id, int index)
    {
        var image = Assert.IsType<FileStreamResult>(await environment.Http.GetImage(HttpRequests.Make("GET", $"/api/generations/{id}/images/{index}"), environment.Client, id, index, Token));
        using var buffer = new MemoryStream();
        await image.FileStream.CopyToAsync(buffer, Token);
        return buffer.ToArray();
    }

    [Fact]
    public async Task AnActivityThatFailsOnceIsRetriedAndGivesTheSameBytes()
    {
        byte[][] expected;
        await using (var clean = await TestEnvironment.StartAsync(useAzurite: false))
        {
            var status = await CompleteAsync(clean, await clean.Http.Start(HttpRequests.Make("POST", "/api/generations", SmallRequest()), clean.Client, Token));
            Assert.Equal("Completed", status.Status);
            expected = [await ImageAsync(clean, status.Id, 0), await ImageAsync(clean, status.Id, 1)];
        }

        var faults = new FailingOnce(blob => blob.StartsWith("latents/stage-b/", StringComparison.Ordinal));
        await using var environment = await TestEnvironment.StartAsync(configure: services => faults.Install(services));
        var retried = await CompleteAsync(environment, await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", SmallRequest()), environment.Client, Token));

        Assert.Equal("Completed", retried.Status);
        Assert.Equal(1, faults.Failures);
        Assert.Equal(expected[0], await ImageAsync(environment, retried.Id, 0));
        Assert.Equal(expected[1], await ImageAsync(environment, retried.Id, 1));
    }

    [Fact]
    public async Task ARepeatedIdempotencyKeyAttachesToTheSameGenerationAndStartsNothingNew()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var headers = new Dictionary<string, string> { [Wuerstchen.Api.GenerationApi.IdempotencyHeader] = "client-request-7" };

        var first = Assert.IsType<AcceptedResult>(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", SmallRequest(), headers), environment.Client, Token));
        var second = Assert.IsType<AcceptedResult>(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", SmallRequest(), headers), environment.Client, Token));
        Assert.Equal(first.Location, second.Location);
        Assert.Equal(true, second.Value!.GetType().GetProperty("Existing")!.GetValue(second.Value));

        var instances = new List<OrchestrationMetadata>();
        await foreach (var instance in environment.Client.GetAllInstancesAsync(new OrchestrationQuery { FetchInputsAndOutputs = false }))
            instances.Add(instance);
        Assert.Single(instances);

        var conflict = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", SmallRequest(prompt: "something else"), headers), environment.Client, Token);
        Assert.Equal(409, HttpRequests.StatusOf(conflict));
    }

    [Fact]
    public async Task ReDecodingReusesTheStageCLatentsAndChangesOnlyStageB()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var original = await CompleteAsync(environment, await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", SmallRequest()), environment.Client, Token));
        var originalResult = (await environment.Client.GetInstanceAsync(original.Id, getInputsAndOutputs: true, Token))!.ReadOutputAs<GenerationResult>()!;

        var redecoded = await CompleteAsync(environment, await environment.Http.Redecode(
            HttpRequests.Make("POST", $"/api/generations/{original.Id}/redecode", HttpRequests.Json(new { decoderSeed = 99, decoderSteps = 3 })),
            environment.Client, original.Id, Token));
        var result = (await environment.Client.GetInstanceAsync(redecoded.Id, getInputsAndOutputs: true, Token))!.ReadOutputAs<GenerationResult>()!;

        Assert.Equal("Completed", redecoded.Status);
        Assert.True(result.StageCReused);
        Assert.Equal(originalResult.StageCBlob, result.StageCBlob);
        Assert.NotEqual(originalResult.StageBBlob, result.StageBBlob);
        Assert.Equal(99UL, redecoded.Recipe!.Items[0].DecoderSeed);
        Assert.NotEqual(await ImageAsync(environment, original.Id, 0), await ImageAsync(environment, redecoded.Id, 0));

        // Without its Stage C latents a re-decode fails rather than paying for Stage C again.
        await environment.Store.DeleteAsync(originalResult.StageCBlob, Token);
        var orphan = await CompleteAsync(environment, await environment.Http.Redecode(
            HttpRequests.Make("POST", $"/api/generations/{original.Id}/redecode", HttpRequests.Json(new { decoderSeed = 5 })), environment.Client, original.Id, Token));
        Assert.Equal("Failed", orphan.Status);
        Assert.Contains("Stage C latents", orphan.Error);
        Assert.False(await environment.Store.ExistsAsync(originalResult.StageCBlob, Token));
    }

    [Fact]
    public async Task DeletingARunningGenerationCancelsIt()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        string body = HttpRequests.Json(new { prompt = "a long one", width = 2048, height = 2048, seed = 1, priorSteps = 200, decoderSteps = 100 });
        var started = Assert.IsType<AcceptedResult>(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body), environment.Client, Token));
        string id = (string)started.Value!.GetType().GetProperty("Id")!.GetValue(started.Value)!;
        using (var running = CancellationTokenSource.CreateLinkedTokenSource(Token))
        {
            running.CancelAfter(TimeSpan.FromMinutes(1));
            while ((await environment.Client.GetInstanceAsync(id, Token))!.RuntimeStatus != OrchestrationRuntimeStatus.Running)
                await Task.Delay(50, running.Token);
        }

        var cancelled = await environment.Http.Cancel(HttpRequests.Make("DELETE", $"/api/generations/{id}"), environment.Client, id, Token);
        Assert.Equal(202, HttpRequests.StatusOf(cancelled));
        var ended = await environment.Client.WaitForInstanceCompletionAsync(id, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Terminated, ended.RuntimeStatus);
        Assert.Equal(409, HttpRequests.StatusOf(await environment.Http.Cancel(HttpRequests.Make("DELETE", $"/api/generations/{id}"), environment.Client, id, Token)));
    }

    [Fact]
    public async Task ReplaysOfTheOrchestratorAreDeterministic()
    {
        int executions = 0;
        bool sawReplay = false;
        await using var environment = await TestEnvironment.StartAsync(register: (registry, _) =>
        {
            registry.AddOrchestratorFunc<GenerationJob, GenerationResult>("CountedGenerateImage", (context, job) =>
            {
                Interlocked.Increment(ref executions);
                sawReplay |= context.IsReplaying;
                return GenerateImageOrchestration.RunAsync(context, job);
            });
            // Changes its mind on replay: the engine must notice.
            registry.AddOrchestratorFunc<GenerationJob, StageResult>("Fickle", (context, job) =>
                context.CallActivityAsync<StageResult>(context.IsReplaying ? StageActivities.StageB : StageActivities.StageC, new StageWork(job.GenerationId, job.Batch)));
        });
        var service = environment.Services.GetRequiredService<GenerationService>();
        var outcome = await service.StartAsync(environment.Client, new GenerationRequest { Prompt = "replay", Width = 128, Height = 128, PriorSteps = 2, DecoderSteps = 2, Seed = 3 }, "replay-key", Token);
        await environment.Client.WaitForInstanceCompletionAsync(outcome.GenerationId!, Token);
        var job = new GenerationJob("replayed", new BatchRef(GenerationService.PlanBlobFor(outcome.GenerationId!), 0), new());

        string counted = await environment.Client.ScheduleNewOrchestrationInstanceAsync("CountedGenerateImage", job, Token);
        var done = await environment.Client.WaitForInstanceCompletionAsync(counted, getInputsAndOutputs: true, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.True(executions >= 4 && sawReplay, $"the orchestrator ran {executions} times; replays were expected");

        string fickle = await environment.Client.ScheduleNewOrchestrationInstanceAsync("Fickle", job, Token);
        var failed = await environment.Client.WaitForInstanceCompletionAsync(fickle, getInputsAndOutputs: true, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Failed, failed.RuntimeStatus);
        Assert.Contains("determinis", failed.FailureDetails!.ErrorMessage, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task InvalidRequestsAreAnsweredWithEveryBadFieldNamed()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        string body = HttpRequests.Json(new
        {
            prompt = " ",
            width = 1000,
            height = 4096,
            images = 99,
            seed = -1,
            priorSteps = 0,
            priorGuidance = 1e9,
            priorModel = "someone/unknown-prior",
        });
        var result = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body), environment.Client, Token);
        var problem = Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(result).Value);
        Assert.Equal(["height", "images", "priorGuidance", "priorModel", "priorSteps", "prompt", "seed", "width"], problem.Errors.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("896 and 1024", problem.Errors["width"][0]);

        var unknownField = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", "{\"prompt\": \"x\", \"negative_prompt\": \"y\"}"), environment.Client, Token);
        Assert.Contains("negative_prompt", Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(unknownField).Value).Errors.Single().Value[0]);

        var notJson = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", "{prompt"), environment.Client, Token);
        Assert.Equal(400, HttpRequests.StatusOf(notJson));
        var badWait = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", SmallRequest(), query: "?wait=forever"), environment.Client, Token);
        Assert.Contains("wait", Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(badWait).Value).Errors.Keys);

        Assert.Equal(404, HttpRequests.StatusOf(await environment.Http.Get(HttpRequests.Make("GET", "/api/generations/nope"), environment.Client, "nope", Token)));
        Assert.Equal(404, HttpRequests.StatusOf(await environment.Http.GetImage(HttpRequests.Make("GET", "/api/generations/nope/images/0"), environment.Client, "nope", 0, Token)));
        Assert.Equal(404, HttpRequests.StatusOf(await environment.Http.Cancel(HttpRequests.Make("DELETE", "/api/generations/nope"), environment.Client, "nope", Token)));

        var empty = new List<OrchestrationMetadata>();
        await foreach (var instance in environment.Client.GetAllInstancesAsync())
            empty.Add(instance);
        Assert.Empty(empty);
    }

    /// <summary>A blob store whose first write of a matching blob fails as a transient storage error would.</summary>
    private sealed class FailingOnce(Func<string, bool> matches)
    {
        private readonly Func<string, bool> _matches = matches;
        private int _failures;

        public int Failures => _failures;

        public void Install(IServiceCollection services)
        {
            var original = services.Single(d => d.ServiceType == typeof(IBlobStore));
            services.Remove(original);
            services.AddSingleton<IBlobStore>(provider => new Decorator((IBlobStore)original.ImplementationFactory!(provider), this));
        }

        private sealed class Decorator(IBlobStore inner, FailingOnce owner) : IBlobStore
        {
            public string Description => inner.Description;
            public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default) => inner.ExistsAsync(name, cancellationToken);
            public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default) => inner.GetInfoAsync(name, cancellationToken);
            public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default) => inner.OpenReadAsync(name, cancellationToken);
            public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(name, cancellationToken);
            public IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
            public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default) => inner.GetReadUriAsync(name, lifetime, cancellationToken);

            public Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default)
            {
                if (owner._matches(name) && Interlocked.CompareExchange(ref owner._failures, 1, 0) == 0)
                    throw new IOException($"Simulated transient failure writing {name}.");
                return inner.WriteAsync(name, content, options, cancellationToken);
            }
        }
    }
}
