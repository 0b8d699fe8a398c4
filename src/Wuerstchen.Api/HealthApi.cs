using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Wuerstchen.Workflows.Health;

namespace Wuerstchen.Api;

/// <summary>
/// The container platform's probes, each its own route (docs/api.md, "Health"; infra/modules/functionApp.bicep points
/// the Container Apps probes at them). All are anonymous: the platform sends no key.
/// </summary>
public sealed class HealthApi(HealthChecks health, ModelPreloader preloader)
{
    /// <summary>Liveness: the worker answers. Touches no native library, storage or model, so a busy GPU never fails it.</summary>
    public static IActionResult Live() => new OkObjectResult(new LiveResponse("alive"));

    /// <summary>Startup: 200 once the start-up work (the model preload) is over, successful or not; 503 while it runs.</summary>
    public IActionResult Startup()
    {
        var status = preloader.Status;
        return new ObjectResult(new StartupResponse(status.Finished ? "started" : "starting", status))
        {
            StatusCode = status.Finished ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable,
        };
    }

    /// <summary>Readiness: 200 when the store answers, the model root is there, the device is usable and the default models are resident on it; 503 with the failing checks otherwise.</summary>
    public async Task<IActionResult> Ready(CancellationToken cancellationToken)
    {
        var report = await health.CheckAsync(cancellationToken);
        return new ObjectResult(new ReadinessResponse(report.Status, report.Checks.Where(c => !c.Ok).ToArray()))
        {
            StatusCode = report.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable,
        };
    }

    /// <summary>The whole report: every check, the preload, LibTorch, the NVIDIA driver version and each GPU's compute capability. Status code as readiness.</summary>
    public async Task<IActionResult> Report(CancellationToken cancellationToken)
    {
        var report = await health.CheckAsync(cancellationToken);
        return new ObjectResult(report) { StatusCode = report.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable };
    }
}

public sealed record LiveResponse(string Status);

public sealed record StartupResponse(string Status, PreloadStatus Preload);

public sealed record ReadinessResponse(string Status, IReadOnlyList<HealthCheck> Failing);
