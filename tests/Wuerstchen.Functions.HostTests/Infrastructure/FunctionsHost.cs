using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>
/// The Functions host (built from ../shared/tools/functions-host) running the app's build output on 127.0.0.1:port,
/// started with <c>start-host.sh</c> as <c>func start</c> would, with the given app settings as environment variables.
/// It can be killed (SIGKILL to the host and its worker, like a lost machine) and started again over the same state
/// folder (keys) and storage.
/// </summary>
public sealed class FunctionsHost : IAsyncDisposable
{
    private static readonly string[] InheritedPrefixesToDrop =
        ["Wuerstchen__", "AzureWebJobs", "AzureFunctionsJobHost__", "WUERSTCHEN_", "FUNCTIONS_", "APPLICATIONINSIGHTS_", "WEBSITE_", "CONTAINER_NAME"];

    private readonly string _hostBin;
    private readonly string _app;
    private readonly string _state;
    private readonly string _name;
    private readonly IReadOnlyDictionary<string, string?> _settings;
    private readonly List<HostLog> _logs = [];
    private Process? _process;

    public FunctionsHost(string name, string hostBin, string appFolder, string stateFolder, IReadOnlyDictionary<string, string?> settings)
    {
        _name = name;
        _hostBin = hostBin;
        _app = appFolder;
        _state = stateFolder;
        _settings = settings;
        Port = Repository.FreePort();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{Port}/"), Timeout = TimeSpan.FromSeconds(120) };
    }

    public int Port { get; }

    public HttpClient Http { get; }

    public IReadOnlyDictionary<string, string?> Settings => _settings;

    /// <summary>The log of the current (latest) start.</summary>
    public HostLog Log => _logs[^1];

    /// <summary>Every start's log, oldest first: evidence that spans a kill and a restart.</summary>
    public IReadOnlyList<HostLog> Logs => _logs;

    public IEnumerable<LogEntry> AllEntries => _logs.SelectMany(l => l.Entries);

    public bool HasExited => _process?.HasExited ?? true;

    /// <summary>The host's master key (secrets/host.json of the state folder, written by the host on its first start).</summary>
    public string MasterKey { get; private set; } = "";

    public void Start()
    {
        if (!HasExited)
            throw new InvalidOperationException("The host is already running.");
        var log = new HostLog(Path.Combine(Repository.ArtifactsFolder, $"{_name}-{_logs.Count + 1}.log"));
        _logs.Add(log);
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _hostBin };
        foreach (string argument in new[] { Path.Combine(HostTool.Folder, "start-host.sh"), _hostBin, _app, $"{Port}", _state })
            start.ArgumentList.Add(argument);
        foreach (string key in start.Environment.Keys.ToArray())
        {
            if (InheritedPrefixesToDrop.Any(p => key.StartsWith(p, StringComparison.Ordinal)))
                start.Environment.Remove(key);
        }
        foreach (var (key, value) in _settings)
            start.Environment[key] = value;
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => log.Add(e.Data);
        process.ErrorDataReceived += (_, e) => log.Add(e.Data, isError: true);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process?.Dispose();
        _process = process;
    }

    /// <summary>
    /// Waits until the host runs the app: the host says Running, lists the app's functions, and <paramref name="probe"/>
    /// (the readiness probe: the store answers, the default models are resident) answers 200. The first requests after
    /// start-up can fail while the worker's HTTP pipeline comes up.
    /// </summary>
    public async Task WaitUntilReadyAsync(TimeSpan timeout, string probe = "api/health/ready")
    {
        var clock = Stopwatch.StartNew();
        string last = "nothing yet";
        while (clock.Elapsed < timeout)
        {
            if (HasExited)
                throw new InvalidOperationException($"The host exited (code {_process?.ExitCode}) before it was ready; log: {Log.Path}");
            try
            {
                if (MasterKey.Length == 0 && ReadMasterKey() is { } key)
                    MasterKey = key;
                if (MasterKey.Length > 0)
                {
                    var status = await AdminAsync(HttpMethod.Get, "admin/host/status");
                    last = $"host status {status}";
                    if (status?["state"]?.GetValue<string>() == "Running" && (await AdminAsync(HttpMethod.Get, "admin/functions"))?.AsArray().Count > 0)
                    {
                        using var response = await Http.GetAsync(probe);
                        last = $"GET {probe}: {(int)response.StatusCode}";
                        if (response.StatusCode == HttpStatusCode.OK)
                            return;
                    }
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or InvalidOperationException)
            {
                last = e.Message;
            }
            await Task.Delay(250);
        }
        throw new TimeoutException($"The host was not ready within {timeout.TotalSeconds:0} s ({last}); log: {Log.Path}");
    }

    private string? ReadMasterKey()
    {
        string file = Path.Combine(_state, "secrets", "host.json");
        if (!File.Exists(file))
            return null;
        try
        {
            var secrets = JsonNode.Parse(File.ReadAllText(file)); // UTF-8 with a BOM: File.ReadAllText drops it
            return secrets?["masterKey"]?["value"]?.GetValue<string>();
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null; // being written
        }
    }

    /// <summary>A call to the host's admin API with the master key; the JSON answer, or null for an empty one.</summary>
    public async Task<JsonNode?> AdminAsync(HttpMethod method, string path, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Add("x-functions-key", MasterKey);
        if (body is not null)
            request.Content = JsonContent(body);
        using var response = await Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"{method} /{path} answered {(int)response.StatusCode}: {text}");
        return text.Length == 0 ? null : JsonNode.Parse(text);
    }

    public static StringContent JsonContent(object body) =>
        new(body as string ?? JsonSerializer.Serialize(body, Json.Options), System.Text.Encoding.UTF8, "application/json");

    /// <summary>SIGKILL to the host and its worker at once: nothing is flushed, nothing is shut down.</summary>
    public async Task KillAsync()
    {
        if (_process is null || _process.HasExited)
            return;
        var tree = Descendants(_process.Id).Append(_process.Id).ToArray();
        foreach (int pid in tree)
            _ = Signal(pid, 9);
        await _process.WaitForExitAsync();
        await WaitGoneAsync(tree);
    }

    /// <summary>SIGTERM (a graceful shutdown, as the platform stops a replica), SIGKILL after 30 s.</summary>
    public async Task StopAsync()
    {
        if (_process is null || _process.HasExited)
            return;
        var tree = Descendants(_process.Id).ToArray();
        _ = Signal(_process.Id, 15);
        using (var grace = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            try
            {
                await _process.WaitForExitAsync(grace.Token);
            }
            catch (OperationCanceledException)
            {
                _ = Signal(_process.Id, 9);
                await _process.WaitForExitAsync();
            }
        }
        foreach (int pid in tree)
            _ = Signal(pid, 9);
        await WaitGoneAsync(tree);
    }

    private static async Task WaitGoneAsync(IEnumerable<int> pids)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (pids.Any(pid => Directory.Exists($"/proc/{pid}") && !IsZombie(pid)) && DateTime.UtcNow < deadline)
            await Task.Delay(50);
    }

    private static bool IsZombie(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static IEnumerable<int> Descendants(int root)
    {
        var parents = new Dictionary<int, int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid))
                continue;
            try
            {
                string stat = File.ReadAllText(Path.Combine(dir, "stat"));
                string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1]);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
            {
            }
        }
        var found = new List<int>();
        var pending = new Queue<int>([root]);
        while (pending.TryDequeue(out int parent))
        {
            foreach (var (pid, ppid) in parents)
            {
                if (ppid == parent)
                {
                    found.Add(pid);
                    pending.Enqueue(pid);
                }
            }
        }
        return found;
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Signal(int pid, int signal);

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process?.Dispose();
        foreach (var log in _logs)
            log.Dispose();
        Http.Dispose();
    }
}

/// <summary>../shared/tools/functions-host (or WUERSTCHEN_FUNCTIONS_HOST_TOOL): the host's build and start scripts.</summary>
public static class HostTool
{
    public static string Folder { get; } = Path.GetFullPath(Environment.GetEnvironmentVariable("WUERSTCHEN_FUNCTIONS_HOST_TOOL") is { Length: > 0 } configured
        ? configured
        : Path.Combine(Repository.Root, "..", "shared", "tools", "functions-host"));
}
