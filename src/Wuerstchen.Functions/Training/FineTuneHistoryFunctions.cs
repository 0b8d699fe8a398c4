using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Wuerstchen.Api;

namespace Wuerstchen.Functions.Training;

/// <summary>A fine-tune's loss log and grids, and the installed models, as HTTP triggers (route table: <see cref="ApiRoutes"/>).</summary>
public sealed class FineTuneHistoryFunctions(FineTuneHistoryApi api, InstalledModelsApi installed)
{
    [Function("GetFineTuneLoss")]
    public Task<IActionResult> GetLoss(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.FineTuneLoss)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken) =>
        api.GetLoss(request, client, id, cancellationToken);

    [Function("ListFineTuneGrids")]
    public Task<IActionResult> ListGrids(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.FineTuneGrids)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken) =>
        api.ListGrids(request, client, id, cancellationToken);

    [Function("GetFineTuneGridAtStep")]
    public Task<IActionResult> GetGrid(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.FineTuneGridAtStep)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        int step,
        CancellationToken cancellationToken) =>
        api.GetGrid(request, client, id, step, cancellationToken);

    [Function("ListInstalledModels")]
    public IActionResult ListInstalled(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.InstalledModels)] HttpRequest request) =>
        installed.List();
}
