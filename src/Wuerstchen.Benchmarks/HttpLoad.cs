using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace Wuerstchen.Benchmarks;

/// <summary>
/// HTTP load against a running <c>wuerstchen serve</c> on loopback, in two phases of equal bounds: <b>idle</b> (no
/// generation runs) and <b>busy</b> (one generation after another runs the whole phase). Workers mix status polls,
/// image downloads and bad requests (a 400 field error, a 404 unknown id); the busy phase adds the starts. Each phase
/// stops at half of <c>--requests</c> or half of <c>--duration</c>, whichever comes first. The report: requests per
/// second, p50/p95 per route and phase, and errors by kind, so the polls and downloads of the two phases can be compared.
/// An unmeasured warm-up of at most 300 requests comes first.
/// </summary>
public static class HttpLoad
{
    private sealed record Sample(string Route, double Milliseconds);

    private sealed class Phase(string name)
    {
        public string Name { get; } = name;
        public ConcurrentBag<Sample> Samples { get; } = [];
        public ConcurrentDictionary<string, int> Errors { get; } = new();
        public double Seconds { get; set; }
        public int Generations;
    }

    private const string Small = """{"prompt":"a tin robot","width":128,"height":128,"priorSteps":2,"decoderSteps":2,"seed":5}""";

    /// <summary>A generation long enough on the tiny models to keep the engine busy through many requests.</summary>
    private const string Long = """{"prompt":"a tin robot in a field","width":512,"height":512,"images":4,"priorSteps":60,"decoderSteps":30,"seed":7}""";

    public static async Task<IReadOnlyList<string>> RunAsync(BenchmarkOptions options, TextWriter log)
    {
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency + 2, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        using var http = new HttpClient(handler) { BaseAddress = options.Url, Timeout = TimeSpan.FromMinutes(3) };
        if (options.ApiKey is { } key)
            http.DefaultRequestHeaders.Add("x-functions-key", key);

        log.WriteLine($"Warming up against {options.Url}: one small generation (Prefer: wait=60)…");
        var (id, image) = await FinishedGenerationAsync(http);

        int perPhase = Math.Max(1, options.Requests / 2);
        var window = TimeSpan.FromSeconds(options.DurationSeconds / 2.0);
        // Unmeasured: the JIT and the connection pool warm up on both sides.
        await RunPhaseAsync(http, new Phase("warm-up"), options.Concurrency, Math.Min(perPhase, 300), window, id, image, startGenerations: false, log);
        var idle = new Phase("idle");
        await RunPhaseAsync(http, idle, options.Concurrency, perPhase, window, id, image, startGenerations: false, log);
        var busy = new Phase("busy");
        await RunPhaseAsync(http, busy, options.Concurrency, perPhase, window, id, image, startGenerations: true, log);
        return Report(options, idle, busy);
    }

    private static async Task<(string Id, string Image)> FinishedGenerationAsync(HttpClient http)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "api/generations") { Content = Json(Small) };
        request.Headers.Add("Prefer", "wait=60");
        using var response = await http.SendAsync(request);
        string body = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
            throw new InvalidOperationException($"The warm-up generation did not finish within 60 s: {(int)response.StatusCode} {body}");
        using var status = JsonDocument.Parse(body);
        return (status.RootElement.GetProperty("id").GetString()!, new Uri(status.RootElement.GetProperty("images")[0].GetString()!).PathAndQuery.TrimStart('/'));
    }

    private static async Task RunPhaseAsync(HttpClient http, Phase phase, int concurrency, int maxRequests, TimeSpan window, string id, string image,
        bool startGenerations, TextWriter log)
    {
        log.WriteLine($"Phase {phase.Name}: up to {maxRequests} requests or {window.TotalSeconds:F0} s, {concurrency} in flight{(startGenerations ? ", generations running throughout" : "")}…");
        using var stop = new CancellationTokenSource(window);
        int issued = 0;
        var clock = Stopwatch.StartNew();
        var generator = startGenerations ? KeepGeneratingAsync(http, phase, stop.Token) : Task.CompletedTask;
        if (startGenerations)
            await Task.Delay(500); // the first start is in and its Stage C runs before the workers go

        var workers = Enumerable.Range(0, concurrency).Select(async worker =>
        {
            var random = new Random(worker);
            while (!stop.IsCancellationRequested && Interlocked.Increment(ref issued) <= maxRequests)
            {
                double draw = random.NextDouble();
                var (route, method, path, body, expected) = draw switch
                {
                    < 0.45 => ("status poll", HttpMethod.Get, $"api/generations/{id}", (string?)null, new[] { 200 }),
                    < 0.75 => ("image download", HttpMethod.Get, image, null, new[] { 200 }),
                    < 0.90 => ("bad request (400)", HttpMethod.Post, "api/generations", """{"prompt":"x","width":1000}""", new[] { 400 }),
                    _ => ("unknown id (404)", HttpMethod.Get, "api/generations/gen-doesnotexist", null, new[] { 404 }),
                };
                await TimeAsync(http, phase, route, method, path, body, expected, CancellationToken.None);
            }
        }).ToArray();
        await Task.WhenAll(workers);
        phase.Seconds = clock.Elapsed.TotalSeconds;
        await stop.CancelAsync();
        await generator;
    }

    /// <summary>Starts a long generation, polls it until it ends, and starts the next, until the phase ends.</summary>
    private static async Task KeepGeneratingAsync(HttpClient http, Phase phase, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            string? body = await TimeAsync(http, phase, "start", HttpMethod.Post, "api/generations", Long, [202], CancellationToken.None);
            if (body is null)
                return;
            Interlocked.Increment(ref phase.Generations);
            string id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
            while (!stop.IsCancellationRequested)
            {
                using var status = await http.GetAsync($"api/generations/{id}", CancellationToken.None);
                using var document = JsonDocument.Parse(await status.Content.ReadAsStringAsync(CancellationToken.None));
                if (document.RootElement.GetProperty("status").GetString() is not ("Running" or "Pending"))
                    break;
                try
                {
                    await Task.Delay(200, stop);
                }
                catch (OperationCanceledException)
                {
                }
            }
            if (stop.IsCancellationRequested)
                await http.DeleteAsync($"api/generations/{id}", CancellationToken.None); // leave nothing running
        }
    }

    private static async Task<string?> TimeAsync(HttpClient http, Phase phase, string route, HttpMethod method, string path, string? body, int[] expected, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, path) { Content = body is null ? null : Json(body) };
        var clock = Stopwatch.StartNew();
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
            byte[] content = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            phase.Samples.Add(new Sample(route, clock.Elapsed.TotalMilliseconds));
            int code = (int)response.StatusCode;
            if (!expected.Contains(code))
            {
                phase.Errors.AddOrUpdate($"{route}: HTTP {code} (expected {string.Join("/", expected)})", 1, (_, n) => n + 1);
                return null;
            }
            return Encoding.UTF8.GetString(content);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            phase.Errors.AddOrUpdate($"{route}: {e.GetType().Name}", 1, (_, n) => n + 1);
            return null;
        }
    }

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static List<string> Report(BenchmarkOptions options, Phase idle, Phase busy)
    {
        var lines = new List<string>
        {
            $"HTTP load against wuerstchen serve at {options.Url} ({options.Concurrency} in flight; at most {options.Requests} requests or {options.DurationSeconds} s)",
            "",
            "| phase | requests | seconds | requests/s | generations started | errors |",
            "| --- | --- | --- | --- | --- | --- |",
        };
        foreach (var phase in new[] { idle, busy })
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {phase.Name} | {phase.Samples.Count} | {phase.Seconds:F1} | {phase.Samples.Count / phase.Seconds:F0} | {phase.Generations} | {phase.Errors.Values.Sum()} |"));
        }
        lines.Add("");
        lines.Add("| route | idle n | idle p50 ms | idle p95 ms | busy n | busy p50 ms | busy p95 ms |");
        lines.Add("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (string route in idle.Samples.Select(s => s.Route).Concat(busy.Samples.Select(s => s.Route)).Distinct().Order(StringComparer.Ordinal))
        {
            var a = idle.Samples.Where(s => s.Route == route).Select(s => s.Milliseconds).Order().ToArray();
            var b = busy.Samples.Where(s => s.Route == route).Select(s => s.Milliseconds).Order().ToArray();
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"| {route} | {a.Length} | {Percentile(a, 0.50)} | {Percentile(a, 0.95)} | {b.Length} | {Percentile(b, 0.50)} | {Percentile(b, 0.95)} |"));
        }
        var errors = idle.Errors.Select(e => ("idle", e.Key, e.Value)).Concat(busy.Errors.Select(e => ("busy", e.Key, e.Value))).ToArray();
        lines.Add("");
        lines.Add(errors.Length == 0 ? "Errors: none." : "Errors by kind:");
        foreach (var (phase, kind, count) in errors)
            lines.Add($"- {phase}: {kind} × {count}");
        return lines;
    }

    private static string Percentile(double[] sorted, double q) =>
        sorted.Length == 0 ? "–" : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)].ToString("F1", CultureInfo.InvariantCulture);
}
