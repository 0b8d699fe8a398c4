using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Functions.Training;

/// <summary>The models installed under the model root, per stage (the published fine-tuned versions are <c>GET /api/models</c>).</summary>
public sealed class InstalledModelFunctions(InstalledModels installed)
{
    [Function("ListInstalledModels")]
    public IActionResult List([HttpTrigger(AuthorizationLevel.Function, "get", Route = "models/installed")] HttpRequest request) =>
        new OkObjectResult(new InstalledModelListResponse(installed.List()));
}

/// <summary>The models under the model root that each stage can load, with their size on disk.</summary>
public sealed record InstalledModelListResponse(IReadOnlyList<InstalledModel> Models);
