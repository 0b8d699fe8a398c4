using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Hosting;
using Wuerstchen.Api;
using Wuerstchen.Workflows.Health;

namespace Wuerstchen.Functions;

/// <summary>The probes' routes as HTTP triggers (route table: <see cref="ApiRoutes"/>); anonymous, the platform sends no key.</summary>
public sealed class HealthFunctions(HealthApi api)
{
    [Function("HealthLive")]
    public static IActionResult Live([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.HealthLive)] HttpRequest request) =>
        HealthApi.Live();

    [Function("HealthStartup")]
    public IActionResult Startup([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.HealthStartup)] HttpRequest request) =>
        api.Startup();

    [Function("HealthReady")]
    public Task<IActionResult> Ready([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.HealthReady)] HttpRequest request) =>
        api.Ready(request.HttpContext.RequestAborted);

    [Function("Health")]
    public Task<IActionResult> Report([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.HealthReport)] HttpRequest request) =>
        api.Report(request.HttpContext.RequestAborted);
}

/// <summary>Starts the model preload in the background when the worker starts; the host does not wait for it.</summary>
public sealed class ModelPreloadService(ModelPreloader preloader) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => preloader.RunAsync(stoppingToken);
}
