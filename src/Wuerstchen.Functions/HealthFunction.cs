using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using TorchSharp;

namespace Wuerstchen.Functions;

/// <summary>Liveness for the container platform: the worker runs and the native tensor library loads.</summary>
public static class HealthFunction
{
    [Function("Health")]
    public static IActionResult Run([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = "health")] HttpRequest request)
    {
        using var probe = torch.ones(1);
        return new OkObjectResult(new
        {
            status = "healthy",
            torch = torch.__version__,
            cuda = torch.cuda.is_available(),
        });
    }
}
