using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Health;

namespace Wuerstchen.Api;

/// <summary>Who may call a route: with the API key (the Functions host's function key, or <c>serve --api-key</c>) or anyone.</summary>
public enum RouteAccess
{
    Key,
    Anonymous,
}

/// <summary>One answer a route gives: its status, what it means, and the schema of its body (null: none, or not JSON).</summary>
public sealed record RouteResponse(int Status, string Description, Type? Body = null, string? ContentType = null);

/// <summary>What a host hands a route's handler: the request, the Durable client, the services, the request's cancellation.</summary>
public sealed record ApiCall(HttpRequest Request, DurableTaskClient Client, IServiceProvider Services, CancellationToken CancellationToken)
{
    public string Id => (string)Request.RouteValues["id"]!;

    public T Handler<T>() where T : notnull => Services.GetRequiredService<T>();
}

/// <summary>
/// A route of the HTTP API as both hosts serve it: the Functions app declares one HTTP trigger per route, with this
/// <see cref="Name"/>, <see cref="Method"/>, <see cref="Template"/> and access (a test reflects over the triggers and
/// compares), and <c>wuerstchen serve</c> maps <see cref="Handle"/> on Kestrel. Both end in the same handler.
/// </summary>
public sealed record ApiRoute(
    string Name,
    string Method,
    string Template,
    RouteAccess Access,
    string Summary,
    Type? RequestBody,
    IReadOnlyList<RouteResponse> Responses,
    Func<ApiCall, Task<IActionResult>> Handle,
    IReadOnlyList<RouteQuery>? Query = null,
    IReadOnlyList<RouteHeader>? Headers = null)
{
    /// <summary>The path as OpenAPI writes it: <c>/api/generations/{id}/images/{index}</c> (constraints dropped, the root as <c>/</c>).</summary>
    public string Path => ApiRoutes.OpenApiPath(Template);
}

/// <summary>A query parameter a route reads.</summary>
public sealed record RouteQuery(string Name, string Description, string Type = "string");

/// <summary>A request header a route reads.</summary>
public sealed record RouteHeader(string Name, string Description);

/// <summary>
/// The one route table of the HTTP API. The Functions app runs with an empty route prefix (host.json), so templates are
/// the whole path, the same on both hosts. Templates are constants so the triggers' attributes can name them.
/// </summary>
public static class ApiRoutes
{
    public const string Generations = "api/generations";
    public const string Generation = "api/generations/{id}";
    public const string GenerationImage = "api/generations/{id}/images/{index:int}";
    public const string GenerationRedecode = "api/generations/{id}/redecode";
    public const string FineTunes = "api/finetunes";
    public const string FineTune = "api/finetunes/{id}";
    public const string FineTuneGrid = "api/finetunes/{id}/grid";
    public const string Models = "api/models";
    public const string HealthLive = "api/health/live";
    public const string HealthStartup = "api/health/startup";
    public const string HealthReady = "api/health/ready";
    public const string HealthReport = "api/health";
    public const string GenerationThumbnail = "api/generations/{id}/images/{index:int}/thumbnail";
    public const string BulkJobs = "api/bulk";
    public const string BulkJob = "api/bulk/{jobId}";
    public const string BulkManifest = "api/bulk/{jobId}/manifest";
    public const string BulkImage = "api/bulk/{jobId}/images/{index:int}/{n:int}";
    public const string BulkZip = "api/bulk/{jobId}/zip";
    public const string FineTuneLoss = "api/finetunes/{id}/loss";
    public const string FineTuneGrids = "api/finetunes/{id}/grids";
    public const string FineTuneGridAtStep = "api/finetunes/{id}/grids/{step:int}";
    public const string InstalledModels = "api/models/installed";
    public const string OpenApi = "api/openapi.json";
    public const string Reference = "api/docs";

    /// <summary>The site root (the Functions host has no empty route; an optional empty segment is its way to say "/").</summary>
    public const string WebAppRoot = "{root:maxlength(0)?}";

    /// <summary>The web app's static files.</summary>
    public const string WebApp = "app/{*path}";

    private static readonly RouteResponse Invalid = new(400, "Invalid fields or query: every bad field named under `errors` (RFC 7807).", typeof(ValidationProblemDetails), "application/problem+json");
    private static readonly RouteResponse TooLarge = new(413, "The body is larger than Wuerstchen:Api:MaxBodyBytes.", typeof(ProblemDetails), "application/problem+json");
    private static RouteResponse NotFound(string what) => new(404, what, typeof(ProblemDetails), "application/problem+json");
    private static RouteResponse Conflict(string what) => new(409, what, typeof(ProblemDetails), "application/problem+json");
    private static readonly RouteResponse Unauthorized = new(401, "The API key is missing or wrong (x-functions-key header or ?code=).");

    private static readonly RouteQuery Wait = new("wait", "Seconds (0 … Wuerstchen:Api:MaxWait) to wait for the generation to end before answering 202; also `Prefer: wait=N`.", "number");
    private static readonly RouteHeader Idempotency = new(GenerationApi.IdempotencyHeader, "1 … 200 printable ASCII characters; repeating a request with the same key attaches to the same generation.");
    private static readonly RouteHeader Prefer = new("Prefer", "`wait=N`: as `?wait=N` (RFC 7240).");

    public static readonly IReadOnlyList<ApiRoute> All =
    [
        new("StartGeneration", "POST", Generations, RouteAccess.Key, "Start a generation", typeof(GenerationRequest),
            [new(202, "Accepted: the generation runs; poll `statusUrl`.", typeof(StartedResponse)),
             new(200, "Finished within the wait: the final status.", typeof(GenerationStatusResponse)),
             Invalid, TooLarge, Conflict("The Idempotency-Key was already used for a different request."), Unauthorized],
            call => call.Handler<GenerationApi>().Start(call.Request, call.Client, call.CancellationToken),
            [Wait], [Idempotency, Prefer]),
        new("GetGeneration", "GET", Generation, RouteAccess.Key, "A generation's status, stage, step progress, error, image links and recipe", null,
            [new(200, "The status.", typeof(GenerationStatusResponse)), NotFound("No generation (or bulk batch) with this id."), Unauthorized],
            call => call.Handler<GenerationApi>().Get(call.Request, call.Client, call.Id, call.CancellationToken)),
        new("GetGenerationImage", "GET", GenerationImage, RouteAccess.Key, "One image of a finished generation (PNG with the recipe in its text chunks)", null,
            [new(200, "The PNG.", null, "image/png"), new(302, "A short-lived read link (Wuerstchen:Api:ImageDelivery = Link)."),
             NotFound("Unknown generation, not finished, or no such image."), Unauthorized],
            call => call.Handler<GenerationApi>().GetImage(call.Request, call.Client, call.Id, int.Parse((string)call.Request.RouteValues["index"]!, System.Globalization.CultureInfo.InvariantCulture), call.CancellationToken)),
        new("RedecodeGeneration", "POST", GenerationRedecode, RouteAccess.Key, "Run Stage B and A again on a generation's stored Stage C latents", typeof(RedecodeRequest),
            [new(202, "Accepted: a new generation (its own id).", typeof(StartedResponse)), Invalid, TooLarge,
             NotFound("The generation to re-decode does not exist."), Conflict("The Idempotency-Key was already used for a different request."), Unauthorized],
            call => call.Handler<GenerationApi>().Redecode(call.Request, call.Client, call.Id, call.CancellationToken),
            Headers: [Idempotency]),
        new("CancelGeneration", "DELETE", Generation, RouteAccess.Key, "Cancel a generation (its running stage stops within a denoising step)", null,
            [new(202, "Cancelling.", typeof(CancelResponse)), NotFound("No generation with this id."), Conflict("The generation has already ended."), Unauthorized],
            call => call.Handler<GenerationApi>().Cancel(call.Request, call.Client, call.Id, call.CancellationToken)),
        new("StartFineTune", "POST", FineTunes, RouteAccess.Key, "Start a Stage C fine-tune of a dataset", typeof(FineTuneRequest),
            [new(202, "Accepted: the run goes on; poll `statusUrl`.", typeof(StartedResponse)), Invalid, TooLarge,
             Conflict("A run with this id exists with another dataset or recipe."), Unauthorized],
            call => call.Handler<FineTuneApi>().Start(call.Request, call.Client, call.CancellationToken)),
        new("GetFineTune", "GET", FineTune, RouteAccess.Key, "A fine-tune's phase, step, loss, checkpoints and dataset problems", null,
            [new(200, "The status.", typeof(FineTuneStatusResponse)), NotFound("No fine-tune with this id."), Unauthorized],
            call => call.Handler<FineTuneApi>().Get(call.Request, call.Client, call.Id, call.CancellationToken)),
        new("GetFineTuneGrid", "GET", FineTuneGrid, RouteAccess.Key, "The latest EMA-over-raw validation grid of a fine-tune (PNG)", null,
            [new(200, "The PNG.", null, "image/png"), new(302, "A short-lived read link."), NotFound("Unknown fine-tune, or no grid yet."), Unauthorized],
            call => call.Handler<FineTuneApi>().GetGrid(call.Request, call.Client, call.Id, call.CancellationToken)),
        new("CancelFineTune", "DELETE", FineTune, RouteAccess.Key, "Cancel a fine-tune", null,
            [new(202, "Cancelling.", typeof(CancelResponse)), NotFound("No fine-tune with this id."), Conflict("The fine-tune has already ended."), Unauthorized],
            call => call.Handler<FineTuneApi>().Cancel(call.Request, call.Client, call.Id, call.CancellationToken)),
        new("ListModels", "GET", Models, RouteAccess.Key, "The published fine-tuned model versions", null,
            [new(200, "The versions.", typeof(ModelListResponse)), Unauthorized],
            call => call.Handler<FineTuneApi>().ListModels(call.Request, call.CancellationToken)),
        new("ListGenerations", "GET", Generations, RouteAccess.Key, "The gallery: generations newest first, paged with a continuation token, filtered by model and text", null,
            [new(200, "A page.", typeof(GenerationListResponse)), Invalid, Unauthorized],
            call => call.Handler<GalleryApi>().List(call.Request, call.Client, call.CancellationToken),
            [new("limit", "Items per page, 1 … 100 (24).", "integer"), new("continuationToken", "Where the previous page ended (its `continuationToken`)."),
             new("model", "Only generations whose Stage C model is this one."), new("q", "Only generations whose prompt or negative prompt holds this text (any case).")]),
        new("GetGenerationThumbnail", "GET", GenerationThumbnail, RouteAccess.Key, "A small JPEG of one image of a finished generation (320 px on its longer side)", null,
            [new(200, "The JPEG.", null, "image/jpeg"), NotFound("Unknown generation, not finished, or no such image."), Unauthorized],
            call => call.Handler<GalleryApi>().Thumbnail(call.Request, call.Client, call.Id, RouteInt(call, "index"), call.CancellationToken)),
        new("StartBulkJob", "POST", BulkJobs, RouteAccess.Key, "Start a bulk job: prompts and shared settings, as the queue message", typeof(BulkJobRequest),
            [new(202, "Accepted (or the same job again: `existing`).", typeof(StartedResponse)), Invalid, TooLarge, Conflict("The job id was used for a different job."), Unauthorized],
            call => call.Handler<BulkApi>().Start(call.Request, call.Client, call.CancellationToken)),
        new("GetBulkJob", "GET", BulkJob, RouteAccess.Key, "A bulk job's batches and, once done, its summary and results", null,
            [new(200, "The status.", typeof(BulkStatusResponse)), NotFound("No bulk job with this id."), Unauthorized],
            call => call.Handler<BulkApi>().Get(call.Request, call.Client, RouteText(call, "jobId"), call.CancellationToken)),
        new("GetBulkManifest", "GET", BulkManifest, RouteAccess.Key, "A finished bulk job's manifest (JSON lines)", null,
            [new(200, "The manifest.", null, "application/x-ndjson"), NotFound("Unknown job, or not finished."), Unauthorized],
            call => call.Handler<BulkApi>().GetManifest(call.Request, RouteText(call, "jobId"), call.CancellationToken)),
        new("GetBulkImage", "GET", BulkImage, RouteAccess.Key, "Image n of prompt index of a finished bulk job (PNG)", null,
            [new(200, "The PNG.", null, "image/png"), new(302, "A short-lived read link."), NotFound("Unknown job, not finished, or no such image."), Unauthorized],
            call => call.Handler<BulkApi>().GetImage(call.Request, RouteText(call, "jobId"), RouteInt(call, "index"), RouteInt(call, "n"), call.CancellationToken)),
        new("GetBulkZip", "GET", BulkZip, RouteAccess.Key, "Every image of a finished bulk job and its manifest, as one zip", null,
            [new(200, "The zip.", null, "application/zip"), NotFound("Unknown job, or not finished."), Unauthorized],
            call => call.Handler<BulkApi>().GetZip(call.Request, RouteText(call, "jobId"), call.CancellationToken)),
        new("GetFineTuneLoss", "GET", FineTuneLoss, RouteAccess.Key, "A fine-tune's whole loss log: training loss per step, evaluation loss per chunk", null,
            [new(200, "The points.", typeof(LossLogResponse)), NotFound("No fine-tune with this id."), Unauthorized],
            call => call.Handler<FineTuneHistoryApi>().GetLoss(call.Request, call.Client, call.Id, call.CancellationToken)),
        new("ListFineTuneGrids", "GET", FineTuneGrids, RouteAccess.Key, "The validation grid of every checkpoint of a fine-tune", null,
            [new(200, "The grids.", typeof(GridListResponse)), NotFound("No fine-tune with this id."), Unauthorized],
            call => call.Handler<FineTuneHistoryApi>().ListGrids(call.Request, call.Client, call.Id, call.CancellationToken)),
        new("GetFineTuneGridAtStep", "GET", FineTuneGridAtStep, RouteAccess.Key, "The validation grid of one checkpoint (PNG)", null,
            [new(200, "The PNG.", null, "image/png"), new(302, "A short-lived read link."), NotFound("Unknown fine-tune, or no grid at that step."), Unauthorized],
            call => call.Handler<FineTuneHistoryApi>().GetGrid(call.Request, call.Client, call.Id, RouteInt(call, "step"), call.CancellationToken)),
        new("ListInstalledModels", "GET", InstalledModels, RouteAccess.Key, "The models under the model root each stage can load, and the host's defaults", null,
            [new(200, "The models.", typeof(InstalledModelListResponse)), Unauthorized],
            call => Task.FromResult(call.Handler<InstalledModelsApi>().List())),
        new("HealthLive", "GET", HealthLive, RouteAccess.Anonymous, "Liveness: the worker answers", null,
            [new(200, "Alive.", typeof(LiveResponse))],
            call => Task.FromResult(HealthApi.Live())),
        new("HealthStartup", "GET", HealthStartup, RouteAccess.Anonymous, "Startup: 200 once the model preload is over", null,
            [new(200, "Started.", typeof(StartupResponse)), new(503, "The preload still runs.", typeof(StartupResponse))],
            call => Task.FromResult(call.Handler<HealthApi>().Startup())),
        new("HealthReady", "GET", HealthReady, RouteAccess.Anonymous, "Readiness: store, model root, device and default models", null,
            [new(200, "Ready.", typeof(ReadinessResponse)), new(503, "Not ready, with the failing checks.", typeof(ReadinessResponse))],
            call => call.Handler<HealthApi>().Ready(call.CancellationToken)),
        new("Health", "GET", HealthReport, RouteAccess.Anonymous, "The whole health report: checks, preload, LibTorch, driver and GPUs", null,
            [new(200, "Ready.", typeof(HealthReport)), new(503, "Not ready.", typeof(HealthReport))],
            call => call.Handler<HealthApi>().Report(call.CancellationToken)),
        new("OpenApiDocument", "GET", OpenApi, RouteAccess.Anonymous, "This API's OpenAPI 3.1 description", null,
            [new(200, "The OpenAPI document.", null, "application/json")],
            call => Task.FromResult(ApiDescription.Result())),
        new("ApiReference", "GET", Reference, RouteAccess.Anonymous, "A readable API reference page, rendered from the OpenAPI document", null,
            [new(200, "The page.", null, "text/html")],
            call => Task.FromResult(EmbeddedFiles.Reference.Get("index.html"))),
        new("WebAppRoot", "GET", WebAppRoot, RouteAccess.Anonymous, "The web app: redirects to /app/", null,
            [new(302, "To /app/.")],
            call => Task.FromResult(WebAppFiles.Root())),
        new("WebApp", "GET", WebApp, RouteAccess.Anonymous, "The web app's static files (embedded in the assembly)", null,
            [new(200, "The file.", null, "text/html"), NotFound("No such file.")],
            call => Task.FromResult(EmbeddedFiles.WebApp.Get(call.Request.RouteValues["path"] as string))),
    ];

    private static string RouteText(ApiCall call, string name) => (string)call.Request.RouteValues[name]!;

    private static int RouteInt(ApiCall call, string name) => int.Parse(RouteText(call, name), System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The route with this trigger name.</summary>
    public static ApiRoute Named(string name) => All.Single(r => r.Name == name);

    internal static string OpenApiPath(string template)
    {
        if (template == WebAppRoot)
            return "/";
        var segments = template.Split('/').Select(segment =>
        {
            if (!segment.StartsWith('{'))
                return segment;
            string name = segment.Trim('{', '}', '*');
            int colon = name.IndexOf(':');
            return "{" + (colon < 0 ? name : name[..colon]).TrimEnd('?') + "}";
        });
        return "/" + string.Join('/', segments);
    }
}

/// <summary>The answer to a start: the new (or, for a repeated idempotent request, the existing) instance.</summary>
public sealed record StartedResponse(string Id, string StatusUrl, bool Existing);

/// <summary>The answer to a cancel.</summary>
public sealed record CancelResponse(string Id, string Status);
