using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Health;

namespace Wuerstchen.Functions.Tests;

/// <summary>
/// The probes' endpoints over the tiny fixture models: liveness always answers, startup waits for the preload, readiness
/// needs the store, the model root, a usable device and the default models resident on it.
/// </summary>
public sealed class HealthTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public void LivenessAnswersWithoutTouchingStorageModelsOrTheNativeLibrary()
    {
        var result = HealthFunctions.Live(HttpRequests.Make("GET", "/api/health/live"));
        Assert.Equal(200, HttpRequests.StatusOf(result));
    }

    [Fact]
    public async Task ReadinessTurnsTrueOnlyOnceThePreloadHasMadeTheDefaultModelsResidentOnTheDevice()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        var (functions, preloader) = Parts(environment);
        var host = environment.Services.GetRequiredService<ModelHost>();
        Assert.False(host.IsPriorResident(ModelNamesUnderTest.Prior));

        Assert.Equal(503, HttpRequests.StatusOf(functions.Startup(Get("startup"))));
        var before = await ReportAsync(functions);
        Assert.False(before.Ready);
        Assert.Contains(before.Checks, c => c is { Name: "models", Ok: false } && c.Detail.Contains("loading"));
        Assert.Equal(503, HttpRequests.StatusOf(await functions.Ready(Get("ready"))));

        await preloader.RunAsync(Token);

        Assert.Equal(PreloadState.Completed, preloader.Status.State);
        Assert.Equal(200, HttpRequests.StatusOf(functions.Startup(Get("startup"))));
        Assert.Equal(200, HttpRequests.StatusOf(await functions.Ready(Get("ready"))));
        var after = await ReportAsync(functions);
        Assert.True(after.Ready, string.Join("; ", after.Checks.Select(c => $"{c.Name}: {c.Detail}")));
        Assert.All(after.Checks, c => Assert.True(c.Ok, $"{c.Name}: {c.Detail}"));
        Assert.Equal(["Stage C", "Stage B/A"], after.Preload.Models.Select(m => m.Stage));
        Assert.All(after.Preload.Models, m => Assert.Equal("cpu", m.Device));
        Assert.True(host.IsPriorResident(ModelNamesUnderTest.Prior));
        Assert.True(host.IsDecoderResident(ModelNamesUnderTest.Decoder));
        Assert.Equal("cpu", after.Device.Configured);
        Assert.False(after.Device.CudaAvailable);
        Assert.NotNull(after.Device.Gpu); // no driver here: the report says so instead of failing
        Assert.NotNull(after.Device.Gpu.Problem);
    }

    [Fact]
    public async Task WithDeviceCudaAndNoCudaTheReplicaIsNeverReadyAndSaysWhy()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false,
            settings: new Dictionary<string, string?> { ["Wuerstchen:Models:Device"] = "cuda", ["Wuerstchen:Models:Precision"] = "bfloat16" });
        var (functions, preloader) = Parts(environment); // no ModelHost here: with Device=cuda it cannot be built

        await preloader.RunAsync(Token);

        Assert.Equal(PreloadState.Failed, preloader.Status.State);
        Assert.Equal(200, HttpRequests.StatusOf(functions.Startup(Get("startup")))); // start-up is over: no restart loop
        Assert.Equal(503, HttpRequests.StatusOf(await functions.Ready(Get("ready"))));
        var report = await ReportAsync(functions);
        Assert.False(report.Ready);
        var device = Assert.Single(report.Checks, c => c.Name == "device");
        Assert.False(device.Ok);
        Assert.Contains("Device is cuda but LibTorch sees no CUDA device", device.Detail);
        Assert.Contains(report.Checks, c => c is { Name: "models", Ok: false } && c.Detail.Contains("preload failed"));
        Assert.Equal(503, HttpRequests.StatusOf(await functions.Report(Get(""))));
    }

    [Fact]
    public async Task AnUnreachableStoreOrAMissingModelRootMakesTheReplicaNotReady()
    {
        string missingRoot = Path.Combine(Path.GetTempPath(), "wuerstchen-tests", "no-such-model-root-" + Guid.NewGuid().ToString("N"));
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false,
            settings: new Dictionary<string, string?> { ["Wuerstchen:Preload:Enabled"] = "false", ["Wuerstchen:Models:Root"] = missingRoot },
            configure: services => services.AddSingleton<IBlobStore>(new UnavailableStore()));
        var (functions, preloader) = Parts(environment);
        await preloader.RunAsync(Token);

        var report = await ReportAsync(functions);

        Assert.Equal(PreloadState.Disabled, report.Preload.State);
        Assert.Equal(200, HttpRequests.StatusOf(functions.Startup(Get("startup"))));
        Assert.False(report.Ready);
        Assert.Contains(report.Checks, c => c is { Name: "store", Ok: false } && c.Detail.Contains("unavailable"));
        Assert.Contains(report.Checks, c => c is { Name: "modelRoot", Ok: false } && c.Detail.Contains("is the model share mounted?"));
        Assert.Contains(report.Checks, c => c is { Name: "models", Ok: false } && c.Detail.Contains(ModelNamesUnderTest.Prior));
    }

    [Fact]
    public async Task WithPreloadOffTheModelsOnlyNeedToBeFoundAndLoadOnFirstUse()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false,
            settings: new Dictionary<string, string?> { ["Wuerstchen:Preload:Enabled"] = "false" });
        var (functions, preloader) = Parts(environment);
        var host = environment.Services.GetRequiredService<ModelHost>();
        await preloader.RunAsync(Token);

        var report = await ReportAsync(functions);

        Assert.True(report.Ready, string.Join("; ", report.Checks.Select(c => $"{c.Name}: {c.Detail}")));
        Assert.False(host.IsPriorResident(ModelNamesUnderTest.Prior));
    }

    private static (HealthFunctions Functions, ModelPreloader Preloader) Parts(TestEnvironment environment)
    {
        var preloader = environment.Services.GetRequiredService<ModelPreloader>();
        return (new HealthFunctions(new Wuerstchen.Api.HealthApi(environment.Services.GetRequiredService<HealthChecks>(), preloader)), preloader);
    }

    private static Microsoft.AspNetCore.Http.HttpRequest Get(string route) =>
        HttpRequests.Make("GET", "/api/health" + (route.Length > 0 ? "/" + route : ""));

    private static async Task<HealthReport> ReportAsync(HealthFunctions functions) =>
        Assert.IsType<HealthReport>(Assert.IsType<ObjectResult>(await functions.Report(Get(""))).Value);

    private static class ModelNamesUnderTest
    {
        public const string Prior = Pipeline.Generation.ModelNames.DefaultPrior;
        public const string Decoder = Pipeline.Generation.ModelNames.DefaultDecoder;
    }
}
