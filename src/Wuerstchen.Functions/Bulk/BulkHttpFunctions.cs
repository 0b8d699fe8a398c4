using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Wuerstchen.Api;

namespace Wuerstchen.Functions.Bulk;

/// <summary>The bulk routes as HTTP triggers (route table: <see cref="ApiRoutes"/>); each body is the shared handler.</summary>
public sealed class BulkHttpFunctions(BulkApi api)
{
    [Function("StartBulkJob")]
    public Task<IActionResult> Start(
        [HttpTrigger(AuthorizationLevel.Function, "post", Route = ApiRoutes.BulkJobs)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        api.Start(request, client, cancellationToken);

    [Function("GetBulkJob")]
    public Task<IActionResult> Get(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.BulkJob)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string jobId,
        CancellationToken cancellationToken) =>
        api.Get(request, client, jobId, cancellationToken);

    [Function("GetBulkManifest")]
    public Task<IActionResult> GetManifest(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.BulkManifest)] HttpRequest request,
        string jobId,
        CancellationToken cancellationToken) =>
        api.GetManifest(request, jobId, cancellationToken);

    [Function("GetBulkImage")]
    public Task<IActionResult> GetImage(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.BulkImage)] HttpRequest request,
        string jobId,
        int index,
        int n,
        CancellationToken cancellationToken) =>
        api.GetImage(request, jobId, index, n, cancellationToken);

    [Function("GetBulkZip")]
    public Task<IActionResult> GetZip(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.BulkZip)] HttpRequest request,
        string jobId,
        CancellationToken cancellationToken) =>
        api.GetZip(request, jobId, cancellationToken);
}
