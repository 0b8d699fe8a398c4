using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Training;

namespace Wuerstchen.Api;

/// <summary>
/// A fine-tune's history for charts and comparisons: the whole loss log (the status carries only the last 100 points)
/// and the validation grid of every checkpoint that rendered one.
/// </summary>
public sealed class FineTuneHistoryApi(FineTuneService fineTunes, IBlobStore store, IOptions<ApiOptions> options)
{
    public async Task<IActionResult> GetLoss(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        if (await RunOfAsync(client, id, cancellationToken) is not { } runId)
            return NotFound(id);
        return new OkObjectResult(new LossLogResponse(await LossLog.ReadAsync(store, runId, cancellationToken)));
    }

    public async Task<IActionResult> ListGrids(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        CancellationToken cancellationToken)
    {
        if (await RunOfAsync(client, id, cancellationToken) is not { } runId)
            return NotFound(id);
        string prefix = GridsPrefix(runId);
        var grids = new List<GridResponse>();
        await foreach (var blob in store.ListAsync(prefix, cancellationToken))
        {
            string leaf = blob.Name[prefix.Length..];
            if (leaf.EndsWith(".png", StringComparison.Ordinal) && int.TryParse(leaf[..^4], NumberStyles.None, CultureInfo.InvariantCulture, out int step))
                grids.Add(new GridResponse(step, HttpResults.Url(request, $"finetunes/{id}/grids/{step}")));
        }
        return new OkObjectResult(new GridListResponse(grids));
    }

    public async Task<IActionResult> GetGrid(
        HttpRequest request,
        DurableTaskClient client,
        string id,
        int step,
        CancellationToken cancellationToken)
    {
        if (await RunOfAsync(client, id, cancellationToken) is not { } runId || step < 0)
            return NotFound(id);
        string blob = TrainingBlobs.Grid(runId, step);
        if (!await store.ExistsAsync(blob, cancellationToken))
            return HttpResults.Problem(StatusCodes.Status404NotFound, $"Fine-tune '{id}' has no validation grid at step {step}.");
        return await HttpResults.PngAsync(store, blob, options.Value, $"{id}-grid-{step}.png", cancellationToken);
    }

    private async Task<string?> RunOfAsync(DurableTaskClient client, string id, CancellationToken cancellationToken) =>
        (await fineTunes.GetStatusAsync(client, id, cancellationToken))?.RunId;

    private static string GridsPrefix(string runId) => TrainingBlobs.Grid(runId, 0)[..^"00000000.png".Length];

    private static ObjectResult NotFound(string id) => HttpResults.Problem(StatusCodes.Status404NotFound, $"Fine-tune '{id}' does not exist.");
}

public sealed record LossLogResponse(IReadOnlyList<LossPoint> Points);

public sealed record GridResponse(int Step, string Url);

public sealed record GridListResponse(IReadOnlyList<GridResponse> Grids);
