namespace Wuerstchen.Functions.HostTests;

/// <summary>One HTTP route of the app as a client calls it: a request that reaches the function and what the function is.</summary>
/// <param name="Method">The HTTP method.</param>
/// <param name="Path">The whole path without its leading <c>/</c> (host.json's route prefix is empty, so the app's templates are
/// whole paths), with real values in place of the route's parameters.</param>
/// <param name="Function">The function the host serves it with (its key is the one that opens it).</param>
/// <param name="Anonymous">Served without a key (the platform's probes send none; the API description and the web app are public).</param>
/// <param name="Body">A JSON body, for routes that read one.</param>
public sealed record Route(string Method, string Path, string Function, bool Anonymous = false, string? Body = null)
{
    public override string ToString() => $"{Method} /{Path}";
}

/// <summary>
/// Every route the app serves. <see cref="HttpKeyTests"/> checks each one under the host (401 without a key, answered by
/// the app with its key) and fails when the host lists an HTTP function that is missing here: a new route is one line.
/// </summary>
public static class Routes
{
    public const string UnknownGeneration = "gen-00000000000000000000000000000000";
    public const string UnknownFineTune = "ft-000000000000000000000000";
    public const string UnknownBulkJob = "web-00000000000000000000";

    public static readonly Route[] All =
    [
        new("POST", "api/generations", "StartGeneration", Body: "{}"),
        new("GET", "api/generations", "ListGenerations"),
        new("GET", $"api/generations/{UnknownGeneration}", "GetGeneration"),
        new("GET", $"api/generations/{UnknownGeneration}/images/0", "GetGenerationImage"),
        new("GET", $"api/generations/{UnknownGeneration}/images/0/thumbnail", "GetGenerationThumbnail"),
        new("POST", $"api/generations/{UnknownGeneration}/redecode", "RedecodeGeneration", Body: "{}"),
        new("DELETE", $"api/generations/{UnknownGeneration}", "CancelGeneration"),
        new("POST", "api/bulk", "StartBulkJob", Body: "{}"),
        new("GET", $"api/bulk/{UnknownBulkJob}", "GetBulkJob"),
        new("GET", $"api/bulk/{UnknownBulkJob}/manifest", "GetBulkManifest"),
        new("GET", $"api/bulk/{UnknownBulkJob}/images/0/0", "GetBulkImage"),
        new("GET", $"api/bulk/{UnknownBulkJob}/zip", "GetBulkZip"),
        new("POST", "api/finetunes", "StartFineTune", Body: "{}"),
        new("GET", $"api/finetunes/{UnknownFineTune}", "GetFineTune"),
        new("GET", $"api/finetunes/{UnknownFineTune}/grid", "GetFineTuneGrid"),
        new("GET", $"api/finetunes/{UnknownFineTune}/loss", "GetFineTuneLoss"),
        new("GET", $"api/finetunes/{UnknownFineTune}/grids", "ListFineTuneGrids"),
        new("GET", $"api/finetunes/{UnknownFineTune}/grids/2", "GetFineTuneGridAtStep"),
        new("DELETE", $"api/finetunes/{UnknownFineTune}", "CancelFineTune"),
        new("GET", "api/models", "ListModels"),
        new("GET", "api/models/installed", "ListInstalledModels"),
        // The container platform's probes and the health report: anonymous (the platform sends no key).
        new("GET", "api/health/live", "HealthLive", Anonymous: true),
        new("GET", "api/health/startup", "HealthStartup", Anonymous: true),
        new("GET", "api/health/ready", "HealthReady", Anonymous: true),
        new("GET", "api/health", "Health", Anonymous: true),
        // The API description and the web app: anonymous (a browser opens them before it has a key).
        new("GET", "api/openapi.json", "OpenApiDocument", Anonymous: true),
        new("GET", "api/docs", "ApiReference", Anonymous: true),
        new("GET", "", "WebAppRoot", Anonymous: true),
        new("GET", "app/index.html", "WebApp", Anonymous: true),
    ];

    public static Route Named(string display) => All.Single(r => r.ToString() == display);

    public static TheoryData<string> Cases => new(All.Select(r => r.ToString()));
}
