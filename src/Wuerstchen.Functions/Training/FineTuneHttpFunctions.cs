using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Wuerstchen.Api;

namespace Wuerstchen.Functions.Training;

/// <summary>The fine-tuning routes as HTTP triggers (route table: <see cref="ApiRoutes"/>); each body is the shared handler.</summary>
public sealed class FineTuneHttpFunctions(FineTuneApi api)
{
    [Function("StartFineTune")]
    public Task<IActionResult> Start(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.FineTunes)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        api.Start(request, client, cancellationToken);

    [Function("GetFineTune")]
    public Task<IActionResult> Get(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.FineTune)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken) =>
        api.Get(request, client, id, cancellationToken);

    [Function("GetFineTuneGrid")]
    public Task<IActionResult> GetGrid(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.FineTuneGrid)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken) =>
        api.GetGrid(request, client, id, cancellationToken);

    [Function("CancelFineTune")]
    public Task<IActionResult> Cancel(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = ApiRoutes.FineTune)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken) =>
        api.Cancel(request, client, id, cancellationToken);

    [Function("ListModels")]
    public Task<IActionResult> ListModels(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.Models)] HttpRequest request,
        CancellationToken cancellationToken) =>
        api.ListModels(request, cancellationToken);
}
