using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Functions.Training;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Functions.Tests;

/// <summary>A model name is checked against what its stage loads; what another attempt cannot cure is not retried; errors name no server paths.</summary>
public sealed class PermanentFailureTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string Small(object? extra = null)
    {
        var body = new Dictionary<string, object?> { ["prompt"] = "a small red dragon", ["width"] = 128, ["height"] = 128, ["seed"] = 5, ["priorSteps"] = 2, ["decoderSteps"] = 2 };
        foreach (var property in extra?.GetType().GetProperties() ?? [])
            body[property.Name] = property.GetValue(extra);
        return HttpRequests.Json(body);
    }

    private static ValidationProblemDetails Problem(IActionResult result) =>
        Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(result).Value);

    [Fact]
    public async Task ModelNamesAreCheckedAgainstWhatEachStageLoadsAndTheAnswerNamesTheValidOnes()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        var http = environment.Http;
        async Task<string> PriorModelError(string model) =>
            Problem(await http.Start(HttpRequests.Make("POST", "/api/generations", Small(new { priorModel = model })), environment.Client, Token)).Errors["priorModel"].Single();
        async Task<string> DecoderModelError(string model) =>
            Problem(await http.Start(HttpRequests.Make("POST", "/api/generations", Small(new { decoderModel = model })), environment.Client, Token)).Errors["decoderModel"].Single();

        // A single model, a sub-folder of a pipeline and the other stage's pipeline all have a config file; none loads as Stage C.
        foreach (string wrong in new[] { "effnet", "warp-ai/wuerstchen-prior/prior", "warp-ai/wuerstchen", "nobody/nothing", "finetuned/never-published" })
        {
            string error = await PriorModelError(wrong);
            Assert.Contains($"'{wrong}'", error);
            Assert.Contains("Valid Stage C (prior) models: warp-ai/wuerstchen-prior;", error);
            Assert.DoesNotContain(ParityFixtures.Root, error);
        }
        Assert.Contains("not a WuerstchenPriorPipeline", await PriorModelError("warp-ai/wuerstchen"));
        Assert.Contains("single model", await PriorModelError("effnet"));
        foreach (string wrong in new[] { "warp-ai/wuerstchen-prior", "finetuned/some-version" })
            Assert.Contains("Valid Stage B/A (decoder) models: warp-ai/wuerstchen.", await DecoderModelError(wrong));

        // The same check for a re-decode, a bulk job's settings and a fine-tune's models.
        var original = await environment.Services.GetRequiredService<GenerationService>().StartAsync(environment.Client,
            new Pipeline.Generation.GenerationRequest { Prompt = "x", Width = 128, Height = 128, PriorSteps = 2, DecoderSteps = 2 }, null, Token);
        var redecode = await http.Redecode(HttpRequests.Make("POST", $"/api/generations/{original.GenerationId}/redecode", HttpRequests.Json(new { decoderModel = "warp-ai/wuerstchen-prior" })),
            environment.Client, original.GenerationId!, Token);
        Assert.Contains("WuerstchenDecoderPipeline", Problem(redecode).Errors["decoderModel"].Single());
        var bulk = await environment.Services.GetRequiredService<BulkJobIntake>().AcceptAsync(environment.Client,
            HttpRequests.Json(new { jobId = "wrong-model", settings = new { priorModel = "effnet" }, prompts = new[] { "x" } }), "m", Token);
        Assert.Equal(IntakeDisposition.Rejected, bulk.Disposition);
        Assert.Contains("Valid Stage C (prior) models", bulk.Reason);
        var fineTunes = environment.FineTunes;
        var fineTune = await fineTunes.Start(HttpRequests.Make("POST", "/api/finetunes", HttpRequests.Json(new { dataset = new { prefix = "d/" }, basePrior = "warp-ai/wuerstchen" })), environment.Client, Token);
        Assert.Contains("not a WuerstchenPriorPipeline", Problem(fineTune).Errors["basePrior"].Single());

        // The published names still pass.
        Assert.IsType<AcceptedResult>(await http.Start(HttpRequests.Make("POST", "/api/generations", Small(new { priorModel = "warp-ai/wuerstchen-prior", decoderModel = "warp-ai/wuerstchen" })), environment.Client, Token));
    }

    [Fact]
    public async Task AModelThatCannotLoadFailsAtOnceWithAnErrorThatNamesNoServerPath()
    {
        var recorded = new RecordingStore();
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, configure: recorded.Install,
            settings: new Dictionary<string, string?> { ["Wuerstchen:Workflows:Retry:FirstInterval"] = "00:00:01" });
        // A prior pipeline that passes every check short of loading: its Stage C weights are cut short.
        string root = environment.Services.GetRequiredService<IOptions<ModelOptions>>().Value.Root;
        string broken = Path.Combine(root, "broken-prior");
        string source = ParityFixtures.PathOf("models/prior-pipeline");
        Directory.CreateDirectory(Path.Combine(broken, "prior"));
        File.Copy(Path.Combine(source, "model_index.json"), Path.Combine(broken, "model_index.json"));
        foreach (string component in new[] { "text_encoder", "tokenizer", "scheduler" })
            Directory.CreateSymbolicLink(Path.Combine(broken, component), Path.Combine(source, component));
        File.Copy(Path.Combine(source, "prior", "config.json"), Path.Combine(broken, "prior", "config.json"));
        byte[] weights = await File.ReadAllBytesAsync(Path.Combine(source, "prior", "diffusion_pytorch_model.safetensors"), Token);
        await File.WriteAllBytesAsync(Path.Combine(broken, "prior", "diffusion_pytorch_model.safetensors"), weights[..(weights.Length / 2)], Token);

        var started = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", Small(new { priorModel = "broken-prior" })), environment.Client, Token);
        string id = (string)Assert.IsType<AcceptedResult>(started).Value!.GetType().GetProperty("Id")!.GetValue(((AcceptedResult)started).Value)!;
        Assert.Equal(OrchestrationRuntimeStatus.Failed, (await environment.Client.WaitForInstanceCompletionAsync(id, Token)).RuntimeStatus);

        Assert.Equal(1, recorded.Count("Read", name => name == GenerationService.PlanBlobFor(id))); // one attempt of Stage C, no retries
        var status = Assert.IsType<GenerationStatusResponse>(Assert.IsType<OkObjectResult>(await environment.Http.Get(HttpRequests.Make("GET", $"/api/generations/{id}"), environment.Client, id, Token)).Value);
        Assert.Contains("Model 'broken-prior' cannot be loaded for Stage C", status.Error);
        Assert.DoesNotContain(root, status.Error);
        Assert.DoesNotContain(Path.GetTempPath(), status.Error);
        Assert.DoesNotContain(ParityFixtures.Root, status.Error);
    }

    [Fact]
    public async Task AReDecodeWithoutItsStageCLatentsFailsAtOnce()
    {
        var recorded = new RecordingStore();
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, configure: recorded.Install,
            settings: new Dictionary<string, string?> { ["Wuerstchen:Workflows:Retry:FirstInterval"] = "00:00:01" });
        var service = environment.Services.GetRequiredService<GenerationService>();
        var original = await service.StartAsync(environment.Client, new Pipeline.Generation.GenerationRequest { Prompt = "x", Width = 128, Height = 128, PriorSteps = 2, DecoderSteps = 2, Seed = 9 }, null, Token);
        var result = (await environment.Client.WaitForInstanceCompletionAsync(original.GenerationId!, getInputsAndOutputs: true, Token)).ReadOutputAs<GenerationResult>()!;
        await environment.Store.DeleteAsync(result.StageCBlob, Token);

        var redecode = await service.RedecodeAsync(environment.Client, original.GenerationId!, new RedecodeRequest { DecoderSeed = 3 }, null, Token);
        var failed = await environment.Client.WaitForInstanceCompletionAsync(redecode.GenerationId!, getInputsAndOutputs: true, Token);

        Assert.Equal(OrchestrationRuntimeStatus.Failed, failed.RuntimeStatus);
        Assert.Contains("Stage C latents", failed.FailureDetails!.ErrorMessage);
        Assert.Equal(1, recorded.Count("Exists", name => name == result.StageCBlob));
    }

    public static TheoryData<string, string, bool> FailureKinds => new()
    {
        { typeof(GenerationCancelledException).FullName!, "Generation 'g' was cancelled by the client.", false },
        { typeof(StageCMissingException).FullName!, "The Stage C latents 'x' do not exist.", false },
        { typeof(ModelNotLoadableException).FullName!, "Model 'm' cannot be loaded for Stage C: bad.", false },
        { typeof(UnknownModelException).FullName!, "Model 'm' was not found.", false },
        { typeof(Wuerstchen.Models.Loading.ModelConfigException).FullName!, "bad config", false },
        { typeof(FineTuneCancelledException).FullName!, "Fine-tune run 'r' was cancelled or started again.", false },
        { typeof(StageOutOfMemoryException).FullName!, "Stage C ran out of memory.", false },
        { typeof(ExternalException).FullName!, "CUDA out of memory. Tried to allocate 20.00 GiB (GPU 0; 15.77 GiB total capacity)", false },
        { typeof(ExternalException).FullName!, "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough memory: you tried to allocate 1099511627776 bytes.", false },
        { typeof(OutOfMemoryException).FullName!, "Insufficient memory to continue the execution of the program.", false },
        { typeof(InvalidStageDataException).FullName!, "StageB cannot use its input: truncated.", false },
        { typeof(IOException).FullName!, "The storage service is unavailable.", true },
        { typeof(TimeoutException).FullName!, "The operation timed out.", true },
        { typeof(TaskCanceledException).FullName!, "The operation was cancelled because it exceeded the configured timeout of 0:01:40.", true },
        { "Azure.RequestFailedException", "Service request failed. Status: 503 (Server Busy)", true },
        { typeof(ExternalException).FullName!, "Expected all tensors to be on the same device.", true },
    };

    [Theory]
    [MemberData(nameof(FailureKinds))]
    public void TheRetryPolicyRetriesOnlyWhatAnotherAttemptCouldCure(string errorType, string message, bool retried)
    {
        var failure = new TaskFailureDetails(errorType, message, null, null, null);
        Assert.Equal(retried, Failures.IsTransient(failure));
        // Wrapped as a sub-orchestration's failure would be.
        Assert.Equal(retried, Failures.IsTransient(new TaskFailureDetails(typeof(TaskFailedException).FullName!, "Task 'StageC' (#0) failed.", null, failure, null)));
    }

    [Theory]
    [InlineData("'/mnt/models/warp-ai/wuerstchen-prior/prior/config.json': the number 'c_in' is missing.", "'…/config.json': the number 'c_in' is missing.")]
    [InlineData("Model folder '/tmp/wuerstchen-models/3f2a/finetuned/v1/ema' does not exist.", "Model folder '…/ema' does not exist.")]
    [InlineData(@"Could not find file 'C:\models\prior\model.safetensors'.", "Could not find file '…/model.safetensors'.")]
    [InlineData("The Stage C latents 'latents/stage-c/ab12.safetensors' do not exist.", "The Stage C latents 'latents/stage-c/ab12.safetensors' do not exist.")]
    [InlineData("Service request failed: https://account.blob.core.windows.net/wuerstchen/x.png", "Service request failed: https://account.blob.core.windows.net/wuerstchen/x.png")]
    [InlineData("See GET /api/models; 3/4 of the steps ran.", "See GET /api/models; 3/4 of the steps ran.")]
    public void ErrorsForClientsKeepOnlyTheLastPartOfAServerPath(string message, string forClients) =>
        Assert.Equal(forClients, Pipeline.ErrorText.WithoutPaths(message));
}
