using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Azure.Functions.Worker;

namespace Wuerstchen.Functions.Tests.Api;

/// <summary>
/// The Functions app and <c>wuerstchen serve</c> serve one API: the triggers' attributes declare exactly the route
/// table's routes, methods and access, and the same requests get the same status codes from both hosts over HTTP.
/// </summary>
public sealed class HostAgreementTests
{
    private const string Key = "test-key-1234";

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public void TheFunctionsTriggersDeclareExactlyTheRouteTable()
    {
        var declared = FunctionsHostEmulation.Triggers()
            .Select(t => $"{t.Name} {t.Method} /{t.Route} {(t.Level == AuthorizationLevel.Anonymous ? "anonymous" : "key")}")
            .Order(StringComparer.Ordinal).ToArray();
        var table = ApiRoutes.All
            .Select(r => $"{r.Name} {r.Method} /{r.Template} {(r.Access == RouteAccess.Anonymous ? "anonymous" : "key")}")
            .Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(table, declared);
        Assert.DoesNotContain(FunctionsHostEmulation.Triggers(), t => t.Level is not (AuthorizationLevel.Anonymous or AuthorizationLevel.Function));
    }

    [Fact]
    public void HostJsonServesTheTemplatesAsWholePaths()
    {
        using var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepositoryRoot(), "host.json")));
        Assert.Equal("", host.RootElement.GetProperty("extensions").GetProperty("http").GetProperty("routePrefix").GetString());
    }

    [Fact]
    public void TheWebAppsFilesAreAllEmbeddedForBothHosts()
    {
        string root = Path.Combine(RepositoryRoot(), "src", "Wuerstchen.Web", "wwwroot");
        var onDisk = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/')).Order(StringComparer.Ordinal).ToArray();
        Assert.Contains("index.html", onDisk);
        Assert.Equal(onDisk, EmbeddedFiles.WebApp.Files.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task BothHostsAnswerTheSameRequestsWithTheSameStatusCodes()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        await using var functions = await LoopbackHost.FunctionsAsync(environment, Key);
        await using var serve = await LoopbackHost.ServeAsync(environment, Key);

        string small = HttpRequests.Json(new { prompt = "a paper boat", width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 11 });
        // One generation to look at, made through the Functions host (the same instance is then read through both).
        var made = await SendAsync(functions, new("POST", "/api/generations?wait=60", small, Keyed: true));
        Assert.True(made.Status == 200, made.Body);
        string id = JsonDocument.Parse(made.Body).RootElement.GetProperty("id").GetString()!;
        // And one bulk job of three prompts, finished, for the bulk routes.
        string bulkJob = HttpRequests.Json(new { jobId = "web-agree", settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 5 }, prompts = new[] { "a", "b", "c" } });
        var bulkStarted = await SendAsync(functions, new("POST", "/api/bulk", bulkJob, Keyed: true));
        Assert.True(bulkStarted.Status == 202, bulkStarted.Body);
        await environment.Client.WaitForInstanceCompletionAsync(Wuerstchen.Workflows.Bulk.BulkGenerateOrchestration.InstanceIdFor("web-agree"), Token);

        Probe[] probes =
        [
            new("GET", "/api/health/live", Keyed: false),
            new("GET", "/api/health/startup", Keyed: false),
            new("GET", "/api/health/ready", Keyed: false),
            new("GET", "/api/health", Keyed: false),
            new("GET", "/api/openapi.json", Keyed: false),
            new("GET", "/api/docs", Keyed: false),
            new("GET", "/", Keyed: false),
            new("GET", "/app/", Keyed: false),
            new("GET", "/app/no-such-file.js", Keyed: false),
            new("GET", "/app/index.html", Keyed: false),
            new("GET", "/app/app.css", Keyed: false),
            new("GET", "/app/js/app.js", Keyed: false),
            new("GET", "/app/../host.json", Keyed: false),
            new("GET", "/no-such-route", Keyed: false),
            new("POST", "/api/generations", "{\"prompt\": ", Keyed: true),
            new("POST", "/api/generations", "{\"prompt\": \"x\", \"negative_prompt\": \"y\"}", Keyed: true),
            new("POST", "/api/generations", "{\"prompt\": \"x\", \"width\": 1000}", Keyed: true),
            new("POST", "/api/generations?wait=abc", small, Keyed: true),
            new("POST", "/api/generations", small, Keyed: true, Prefer: "wait=-1"),
            new("POST", "/api/generations", small, Keyed: false),
            new("POST", "/api/generations?wait=60", small, Keyed: true),
            new("POST", "/api/generations", small, Keyed: true, Prefer: "respond-async, wait=60"),
            new("PUT", "/api/generations", small, Keyed: true),
            new("GET", $"/api/generations/{id}", Keyed: true),
            new("GET", $"/api/generations/{id}", Keyed: false),
            new("GET", $"/api/generations/{id}/images/0", Keyed: true),
            new("GET", $"/api/generations/{id}/images/7", Keyed: true),
            new("GET", $"/api/generations/{id}/images/first", Keyed: true),
            new("GET", "/api/generations/gen-unknown", Keyed: true),
            new("DELETE", $"/api/generations/{id}", Keyed: true),
            new("DELETE", "/api/generations/gen-unknown", Keyed: true),
            new("POST", "/api/generations/gen-unknown/redecode", "{}", Keyed: true),
            new("POST", $"/api/generations/{id}/redecode", "{\"decoderSeed\": \"many\"}", Keyed: true),
            new("GET", "/api/finetunes/ft-unknown", Keyed: true),
            new("GET", "/api/finetunes/ft-unknown/grid", Keyed: true),
            new("DELETE", "/api/finetunes/ft-unknown", Keyed: true),
            new("POST", "/api/finetunes", "{}", Keyed: true),
            new("GET", $"/api/finetunes/{id}", Keyed: true),
            new("GET", "/api/models", Keyed: true),
            new("GET", "/api/models", Keyed: false),
            new("GET", "/api/models?code=" + Key, Keyed: false),
            new("GET", "/api/generations", Keyed: true),
            new("GET", "/api/generations?limit=2&q=paper", Keyed: true),
            new("GET", "/api/generations?limit=0", Keyed: true),
            new("GET", "/api/generations", Keyed: false),
            new("GET", $"/api/generations/{id}/images/0/thumbnail", Keyed: true),
            new("GET", $"/api/generations/{id}/images/3/thumbnail", Keyed: true),
            new("POST", "/api/bulk", "{}", Keyed: true),
            new("POST", "/api/bulk", "{\"prompts\": [\"x\"], \"settings\": {\"width\": 100}}", Keyed: true),
            new("POST", "/api/bulk", bulkJob, Keyed: true),
            new("POST", "/api/bulk", bulkJob, Keyed: false),
            new("GET", "/api/bulk/web-agree", Keyed: true),
            new("GET", "/api/bulk/web-unknown", Keyed: true),
            new("GET", "/api/bulk/web-agree/manifest", Keyed: true),
            new("GET", "/api/bulk/web-unknown/manifest", Keyed: true),
            new("GET", "/api/bulk/web-agree/images/1/0", Keyed: true),
            new("GET", "/api/bulk/web-agree/images/3/0", Keyed: true),
            new("GET", "/api/bulk/web-agree/zip", Keyed: true),
            new("GET", "/api/bulk/web-unknown/zip", Keyed: true),
            new("GET", "/api/finetunes/ft-unknown/loss", Keyed: true),
            new("GET", "/api/finetunes/ft-unknown/grids", Keyed: true),
            new("GET", "/api/finetunes/ft-unknown/grids/4", Keyed: true),
            new("GET", "/api/models/installed", Keyed: true),
            new("GET", "/api/models/installed", Keyed: false),
        ];
        var differences = new List<string>();
        var seen = new HashSet<int>();
        foreach (var probe in probes)
        {
            var viaFunctions = await SendAsync(functions, probe);
            var viaServe = await SendAsync(serve, probe);
            seen.Add(viaServe.Status);
            if (viaFunctions.Status != viaServe.Status || viaFunctions.ContentType != viaServe.ContentType)
                differences.Add($"{probe.Method} {probe.Path}: Functions {viaFunctions.Status} {viaFunctions.ContentType}, serve {viaServe.Status} {viaServe.ContentType}");
        }
        Assert.True(differences.Count == 0, string.Join("\n", differences));
        // The probes reach every kind of answer, so agreement is not agreement on one code.
        Assert.Superset(new HashSet<int> { 200, 202, 302, 400, 401, 404, 405, 409 }, seen);

        // The zip streams whole over real HTTP on both hosts: every image and the manifest.
        foreach (var host in new[] { functions, serve })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "api/bulk/web-agree/zip");
            request.Headers.Add("x-functions-key", Key);
            using var response = await host.Client.SendAsync(request, Token);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var zip = new System.IO.Compression.ZipArchive(new MemoryStream(await response.Content.ReadAsByteArrayAsync(Token)));
            Assert.Equal(["00000-0.png", "00001-0.png", "00002-0.png", "manifest.jsonl"], zip.Entries.Select(e => e.FullName).Order(StringComparer.Ordinal));
        }
    }

    public sealed record Probe(string Method, string Path, string? Body = null, bool Keyed = true, string? Prefer = null);

    private static async Task<(int Status, string? ContentType, string Body)> SendAsync(LoopbackHost host, Probe probe)
    {
        using var request = new HttpRequestMessage(new HttpMethod(probe.Method), probe.Path.TrimStart('/'));
        if (probe.Body is not null)
            request.Content = new StringContent(probe.Body, Encoding.UTF8, "application/json");
        if (probe.Keyed)
            request.Headers.Add("x-functions-key", Key);
        if (probe.Prefer is not null)
            request.Headers.TryAddWithoutValidation("Prefer", probe.Prefer);
        using var handler = new HttpClientHandler { AllowAutoRedirect = false };
        using var client = new HttpClient(handler) { BaseAddress = host.Address, Timeout = TimeSpan.FromMinutes(3) };
        using var response = await client.SendAsync(request, Token);
        return ((int)response.StatusCode, response.Content.Headers.ContentType?.MediaType, await response.Content.ReadAsStringAsync(Token));
    }

    internal static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Wuerstchen.Functions.sln")))
                return directory.FullName;
        }
        throw new InvalidOperationException("The repository root (Wuerstchen.Functions.sln) is not above the test binaries.");
    }
}
