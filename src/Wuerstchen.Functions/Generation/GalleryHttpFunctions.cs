using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Wuerstchen.Api;

namespace Wuerstchen.Functions.Generation;

/// <summary>The gallery routes as HTTP triggers (route table: <see cref="ApiRoutes"/>); each body is the shared handler.</summary>
public sealed class GalleryHttpFunctions(GalleryApi api)
{
    [Function("ListGenerations")]
    public Task<IActionResult> List(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.Generations)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        CancellationToken cancellationToken) =>
        api.List(request, client, cancellationToken);

    [Function("GetGenerationThumbnail")]
    public Task<IActionResult> Thumbnail(
        [HttpTrigger(AuthorizationLevel.Function, "get", Route = ApiRoutes.GenerationThumbnail)] HttpRequest request,
        [DurableClient] DurableTaskClient client,
        string id,
        int index,
        CancellationToken cancellationToken) =>
        api.Thumbnail(request, client, id, index, cancellationToken);
}
