using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Azure.Data.Tables;
using Azure.Storage.Blobs;
using Azure.Storage.Queues;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>
/// One Functions host for the whole collection, started once: Azurite on free ports, the app's blob store reached
/// through <see cref="StorageProxy"/>, the fixture models, the settings of <c>local.settings.json.example</c>
/// (<see cref="AppSettings"/>). Tests share it and run one after another; a test that kills the host starts it again
/// before it ends. Everything here talks to the app from outside: HTTP with function keys made through the admin API,
/// queues, blobs and tables on Azurite, the admin API and Durable's HTTP API for instance status.
/// </summary>
public sealed class HostFixture : IAsyncLifetime
{
    public const string KeyName = "hosttests";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(3);

    private readonly TempDirectory _temp = new();
    private readonly Dictionary<string, string> _keys = new(StringComparer.Ordinal);
    private Azurite? _azurite;
    private StorageProxy? _proxy;
    private FunctionsHost? _host;

    public Azurite Azurite => _azurite ?? throw NotStarted();
    public StorageProxy StoreProxy => _proxy ?? throw NotStarted();
    public FunctionsHost Host => _host ?? throw NotStarted();
    public AppSettings Settings { get; private set; } = null!;
    public string HostBin { get; private set; } = "";

    /// <summary>The app's blob container, reached directly (not through the proxy).</summary>
    public BlobContainerClient Store { get; private set; } = null!;

    public QueueServiceClient Queues { get; private set; } = null!;
    public TableServiceClient Tables { get; private set; } = null!;

    /// <summary>How long the first start took, from launching the host to the app answering.</summary>
    public TimeSpan FirstStart { get; private set; }

    /// <summary>The function key made for each HTTP function the host lists as function-level.</summary>
    public IReadOnlyDictionary<string, string> Keys => _keys;

    /// <summary>The fine-tune the fine-tune route tests and the kill-and-restart test compare against, run once on first use.</summary>
    public Lazy<Task<JsonNode>> BaselineFineTune { get; }

    public HostFixture() => BaselineFineTune = new(() => FineTunes.RunBaselineAsync(this));

    private static InvalidOperationException NotStarted() => new("The host fixture has not started.");

    public async ValueTask InitializeAsync()
    {
        var clock = Stopwatch.StartNew();
        CleanArtifacts();
        HostBin = await Repository.BuildHostAsync(CancellationToken.None);
        if (!File.Exists(Path.Combine(Repository.AppOutput, "functions.metadata")))
            throw new InvalidOperationException($"The app's build output ({Repository.AppOutput}) has no functions.metadata; build src/Wuerstchen.Functions first.");
        _azurite = await Azurite.StartAsync(CancellationToken.None);
        _proxy = new StorageProxy(_azurite.BlobPort);
        Settings = AppSettings.ForThisMachine(_azurite, _proxy.Port, ModelRoot(_temp), _temp.File("model-cache")).WithAll(TimerDatasets.Settings());
        Store = new BlobServiceClient(_azurite.ConnectionString).GetBlobContainerClient(Settings["Wuerstchen__Storage__Container"]);
        Queues = new QueueServiceClient(_azurite.ConnectionString);
        Tables = new TableServiceClient(_azurite.ConnectionString);

        _host = new FunctionsHost("host", HostBin, Repository.AppOutput, _temp.File("state"), Settings.Values);
        var start = Stopwatch.StartNew();
        _host.Start();
        await _host.WaitUntilReadyAsync(StartTimeout);
        FirstStart = start.Elapsed;
        await CreateFunctionKeysAsync();
        await Store.CreateIfNotExistsAsync();
        Timings.Record("host fixture ready (host build check, Azurite, first host start, keys)", clock.Elapsed);
    }

    /// <summary>A folder laid out like a deployment's model root, the published names pointing at the fixture models.</summary>
    public static string ModelRoot(TempDirectory temp) => FixtureModelRoot.Create(temp.File("models"));

    private static int _cleaned;

    /// <summary>The logs of earlier runs go once per test run.</summary>
    public static void CleanArtifacts()
    {
        if (Interlocked.Exchange(ref _cleaned, 1) == 0 && Directory.Exists(Repository.ArtifactsFolder))
            Directory.Delete(Repository.ArtifactsFolder, recursive: true);
        Directory.CreateDirectory(Repository.ArtifactsFolder);
    }

    private async Task CreateFunctionKeysAsync()
    {
        foreach (var function in (await Host.AdminAsync(HttpMethod.Get, "admin/functions"))!.AsArray())
        {
            string name = function.Text("name");
            var trigger = function!["config"]!["bindings"]!.AsArray().FirstOrDefault(b => b.TextOrNull("type") == "httpTrigger");
            if (trigger is null || string.Equals(trigger.TextOrNull("authLevel"), "anonymous", StringComparison.OrdinalIgnoreCase))
                continue;
            _keys[name] = await CreateFunctionKeyAsync(name, KeyName);
        }
    }

    /// <summary>
    /// A new function key through the admin API. The function's name goes in lower case: this host stores a key under
    /// the name as the URL spells it but looks keys up under the lower-cased name, so on its case-sensitive file store
    /// a key made for "StartGeneration" would never open the function (Azure's Windows plans store them case-insensitively).
    /// </summary>
    public async Task<string> CreateFunctionKeyAsync(string function, string keyName) =>
        (await Host.AdminAsync(HttpMethod.Post, $"admin/functions/{function.ToLowerInvariant()}/keys/{keyName}")).Text("value");

    /// <summary>Kills the host (SIGKILL, host and worker) and starts it again over the same state and storage; the time it took to answer again.</summary>
    public async Task<TimeSpan> KillAndRestartAsync(Func<Task>? whileDown = null)
    {
        await Host.KillAsync();
        if (whileDown is not null)
            await whileDown();
        var clock = Stopwatch.StartNew();
        Host.Start();
        await Host.WaitUntilReadyAsync(StartTimeout);
        return clock.Elapsed;
    }

    /// <summary>Makes sure the shared host is up (a test that failed half-way through a kill may have left it down).</summary>
    public async Task EnsureRunningAsync()
    {
        if (Host.HasExited)
        {
            Host.Start();
            await Host.WaitUntilReadyAsync(StartTimeout);
        }
    }

    /// <summary>
    /// Waits until no function runs in the current host (every "Executing" logged has its "Executed"), so that work a
    /// previous test left behind (an activity of a cancelled generation runs on) does not blur the next one's evidence.
    /// </summary>
    public async Task WaitUntilIdleAsync(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var running = new Dictionary<string, string>();
            foreach (var entry in Host.Log.Entries)
            {
                if (QueueEvidence.ExecutingId(entry.Message) is { } started)
                    running[started.Id] = started.Function;
                else if (QueueEvidence.ExecutedId(entry.Message) is { } ended)
                    running.Remove(ended);
            }
            if (running.Count == 0)
                return;
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"The host still runs {string.Join(", ", running.Values)} after {timeout.TotalSeconds:0} s (log: {Host.Log.Path}).");
            await Task.Delay(250);
        }
    }

    // ---- HTTP, as a client of the app ----

    /// <summary>A request to <c>/api/{path}</c> with the function key of <paramref name="function"/> (none when null).</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? function, object? body = null, IDictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, "api/" + path);
        if (function is not null && headers?.ContainsKey("x-functions-key") != true)
            request.Headers.Add("x-functions-key", _keys[function]);
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
            request.Headers.Add(name, value);
        if (body is not null)
            request.Content = FunctionsHost.JsonContent(body);
        return await Host.Http.SendAsync(request);
    }

    /// <summary>The JSON answer of a request that must answer <paramref name="expected"/>.</summary>
    public async Task<JsonNode> JsonAsync(HttpMethod method, string path, string function, object? body = null, HttpStatusCode expected = HttpStatusCode.OK,
        IDictionary<string, string>? headers = null)
    {
        using var response = await SendAsync(method, path, function, body, headers);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{method} /api/{path}: expected {(int)expected}, got {(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>Polls <c>GET /api/{path}</c> until <paramref name="done"/> holds; fails after <paramref name="timeout"/> with the last answer.</summary>
    public async Task<JsonNode> PollAsync(string path, string function, Func<JsonNode, bool> done, TimeSpan timeout, TimeSpan? interval = null)
    {
        var clock = Stopwatch.StartNew();
        JsonNode? last = null;
        while (clock.Elapsed < timeout)
        {
            using var response = await SendAsync(HttpMethod.Get, path, function);
            if (response.StatusCode == HttpStatusCode.OK)
            {
                last = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
                if (done(last))
                    return last;
            }
            await Task.Delay(interval ?? TimeSpan.FromMilliseconds(250));
        }
        throw new TimeoutException($"GET /api/{path} did not reach the expected state within {timeout.TotalSeconds:0} s; last answer: {last?.ToJsonString()}");
    }

    public static bool Ended(JsonNode status) => status.Text("status") is "Completed" or "Failed" or "Terminated";

    // ---- Durable's HTTP API (a host endpoint), for instances the app has no route for ----

    public async Task<JsonNode?> InstanceAsync(string instanceId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"runtime/webhooks/durabletask/instances/{instanceId}?showInput=false");
        request.Headers.Add("x-functions-key", Host.MasterKey);
        using var response = await Host.Http.SendAsync(request);
        if (response.StatusCode == HttpStatusCode.NotFound)
            return null;
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Durable status of {instanceId}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text);
    }

    public async Task<JsonNode> WaitForInstanceAsync(string instanceId, Func<JsonNode, bool> done, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        JsonNode? last = null;
        while (clock.Elapsed < timeout)
        {
            last = await InstanceAsync(instanceId);
            if (last is not null && done(last))
                return last;
            await Task.Delay(250);
        }
        throw new TimeoutException($"Instance {instanceId} did not reach the expected state within {timeout.TotalSeconds:0} s; last: {last?.ToJsonString()}");
    }

    public static bool InstanceEnded(JsonNode instance) => instance.Text("runtimeStatus") is "Completed" or "Failed" or "Terminated";

    // ---- Blobs of the app's store ----

    public async Task<string?> ReadTextAsync(string blob)
    {
        var client = Store.GetBlobClient(blob);
        if (!await client.ExistsAsync())
            return null;
        return (await client.DownloadContentAsync()).Value.Content.ToString();
    }

    public async Task<byte[]> ReadBytesAsync(string blob) => (await Store.GetBlobClient(blob).DownloadContentAsync()).Value.Content.ToArray();

    public async Task<string[]> ListAsync(string prefix)
    {
        var names = new List<string>();
        await foreach (var item in Store.GetBlobsAsync(Azure.Storage.Blobs.Models.BlobTraits.None, Azure.Storage.Blobs.Models.BlobStates.None, prefix, CancellationToken.None))
            names.Add(item.Name);
        return names.ToArray();
    }

    public async Task WriteAsync(string blob, byte[] content) => await Store.GetBlobClient(blob).UploadAsync(new BinaryData(content), overwrite: true);

    /// <summary>Waits for a blob to appear, at most <paramref name="timeout"/>.</summary>
    public async Task<string> WaitForBlobAsync(string blob, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (await ReadTextAsync(blob) is { } text)
                return text;
            await Task.Delay(250);
        }
        throw new TimeoutException($"Blob {blob} did not appear within {timeout.TotalSeconds:0} s (host log: {Host.Log.Path}).");
    }

    public async ValueTask DisposeAsync()
    {
        if (_host is not null)
            await _host.DisposeAsync();
        if (_proxy is not null)
            await _proxy.DisposeAsync();
        if (_azurite is not null)
            await _azurite.DisposeAsync();
        _temp.Dispose();
        Timings.Write();
    }
}

[CollectionDefinition(Name)]
public sealed class HostCollection : ICollectionFixture<HostFixture>
{
    public const string Name = "Functions host";
}
