using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Api;

/// <summary>The installed models route's handler: what each stage can load under the model root, and the host's defaults.</summary>
public sealed class InstalledModelsApi(InstalledModels installed, IOptions<ApiOptions> options)
{
    public IActionResult List() =>
        new OkObjectResult(new InstalledModelListResponse(installed.List(), NullIfEmpty(options.Value.DefaultPriorModel), NullIfEmpty(options.Value.DefaultDecoderModel)));

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}

/// <summary>
/// The models under the model root that each stage can load, with their size on disk, and the models a request that
/// names none gets (null: the app's defaults, warp-ai/wuerstchen-prior and warp-ai/wuerstchen).
/// </summary>
public sealed record InstalledModelListResponse(IReadOnlyList<InstalledModel> Models, string? DefaultPriorModel, string? DefaultDecoderModel);
