using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Wuerstchen.Api;

namespace Wuerstchen.Functions.Generation;

/// <summary>The generation routes as HTTP triggers (route table: <see cref="ApiRoutes"/>); each body is the shared handler.</summary>
public sealed class GenerationHttpFunctions(GenerationApi api)
{
    [Function("StartGeneration")]
    public Task<IActionResult> Start(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.Generations)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        api.Start(request, client, cancellationToken);

    [Function("GetGeneration")]
    public Task<IActionResult> Get(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.Generation)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken) =>
        api.Get(request, client, id, cancellationToken);

    [Function("GetGenerationImage")]
    public Task<IActionResult> GetImage(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.GenerationImage)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        int index,
        CancellationToken cancellationToken) =>
        api.GetImage(request, client, id, index, cancellationToken);

    [Function("RedecodeGeneration")]
    public Task<IActionResult> Redecode(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.GenerationRedecode)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken) =>
        api.Redecode(request, client, id, cancellationToken);

    [Function("CancelGeneration")]
    public Task<IActionResult> Cancel(
        [HttpTrigger(AuthorizationLevel.Function, "delete", Route = ApiRoutes.Generation)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        CancellationToken cancellationToken) =>
        api.Cancel(request, client, id, cancellationToken);
}
