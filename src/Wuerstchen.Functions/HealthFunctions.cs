using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Hosting;
using Wuerstchen.Workflows.Health;

namespace Wuerstchen.Functions;

/// <summary>
/// The container platform's probes, each its own endpoint (docs/api.md, "Health"; infra/modules/functionApp.bicep points
/// the Container Apps probes at them). All are anonymous: the platform sends no function key.
/// </summary>
public sealed class HealthFunctions(HealthChecks health, ModelPreloader preloader)
{
    public const string LiveRoute = "health/live";
    public const string StartupRoute = "health/startup";
    public const string ReadyRoute = "health/ready";
    public const string ReportRoute = "health";

    /// <summary>Liveness: the worker answers. Touches no native library, storage or model, so a busy GPU never fails it.</summary>
    [Function("HealthLive")]
    public static IActionResult Live([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = LiveRoute)] HttpRequest request) =>
        new OkObjectResult(new { status = "alive" });

    /// <summary>Startup: 200 once the start-up work (the model preload) is over, successful or not; 503 while it runs.</summary>
    [Function("HealthStartup")]
    public IActionResult Startup([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = StartupRoute)] HttpRequest request)
    {
        var status = preloader.Status;
        return new ObjectResult(new { status = status.Finished ? "started" : "starting", preload = status })
        {
            StatusCode = status.Finished ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable,
        };
    }

    /// <summary>Readiness: 200 when the store answers, the model root is there, the device is usable and the default models are resident on it; 503 with the failing checks otherwise.</summary>
    [Function("HealthReady")]
    public async Task<IActionResult> Ready([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ReadyRoute)] HttpRequest request)
    {
        var report = await health.CheckAsync(request.HttpContext.RequestAborted);
        return new ObjectResult(new { status = report.Status, failing = report.Checks.Where(c => !c.Ok) })
        {
            StatusCode = report.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable,
        };
    }

    /// <summary>The whole report: every check, the preload, LibTorch, the NVIDIA driver version and each GPU's compute capability. Status code as readiness.</summary>
    [Function("Health")]
    public async Task<IActionResult> Report([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ReportRoute)] HttpRequest request)
    {
        var report = await health.CheckAsync(request.HttpContext.RequestAborted);
        return new ObjectResult(report) { StatusCode = report.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable };
    }
}

/// <summary>Starts the model preload in the background when the worker starts; the host does not wait for it.</summary>
public sealed class ModelPreloadService(ModelPreloader preloader) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => preloader.RunAsync(stoppingToken);
}
