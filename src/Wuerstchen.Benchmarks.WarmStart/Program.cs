using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wuerstchen.Models.IO;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Workflows;
using Wuerstchen.Workflows.Embedded;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Health;

// The first request after a scale-out, with and without the start-up preload, on the CPU with the tiny fixture models,
// and the gaps between the three stage activities on the embedded Durable engine. Each run is a fresh process, as a
// new replica is: the parent starts `--child cold|preloaded` processes and prints medians (docs/performance.md).
//
//   dotnet run -c Release --project src/Wuerstchen.Benchmarks.WarmStart -- [--runs 3] [--fixtures DIR]
string fixtures = Environment.GetEnvironmentVariable("WUERSTCHEN_PARITY_DIR") is { Length: > 0 } dir
    ? dir
    : Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "..", "shared", "fixtures", "parity"));
int runs = 3;
string? child = null;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--runs": runs = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--fixtures": fixtures = Path.GetFullPath(args[++i]); break;
        case "--child": child = args[++i]; break;
        default:
            Console.Error.WriteLine($"error: unknown option {args[i]} (--runs N, --fixtures DIR)");
            return 2;
    }
}
if (!Directory.Exists(Path.Combine(fixtures, "models", "prior-pipeline")))
{
    Console.Error.WriteLine($"error: no fixture models under {fixtures}/models; pass --fixtures or set WUERSTCHEN_PARITY_DIR.");
    return 2;
}
return child is null ? await WarmStart.ParentAsync(fixtures, runs) : await WarmStart.ChildAsync(fixtures, child == "preloaded");

internal sealed record RunResult(string Mode, double ProcessToHost, double Preload, double ProcessToReady, double FirstRequest,
    double SecondRequest, double[] FirstGaps, double[] SecondGaps, double[] FirstStages, double[] SecondStages)
{
    /// <summary>ModelHost's own load times (its "Loaded … in X s" log lines), both pipelines together.</summary>
    public double ModelLoad { get; set; }
}

internal static class WarmStart
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static async Task<int> ParentAsync(string fixtures, int runs)
    {
        var results = new List<RunResult>();
        for (int run = 0; run < runs; run++)
        {
            foreach (string mode in new[] { "cold", "preloaded" })
            {
                var info = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
                if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
                    info.ArgumentList.Add(typeof(WarmStart).Assembly.Location); // started as `dotnet app.dll`
                foreach (string a in new[] { "--child", mode, "--fixtures", fixtures })
                    info.ArgumentList.Add(a);
                info.Environment["Logging__LogLevel__Default"] = "Warning";
                using var process = Process.Start(info)!;
                string output = await process.StandardOutput.ReadToEndAsync();
                string errors = await process.StandardError.ReadToEndAsync();
                await process.WaitForExitAsync();
                string? line = output.Split('\n').LastOrDefault(l => l.StartsWith('{'));
                if (process.ExitCode != 0 || line is null)
                {
                    Console.Error.WriteLine($"error: the {mode} run failed ({process.ExitCode}): {errors}{output}");
                    return 1;
                }
                var result = JsonSerializer.Deserialize<RunResult>(line, Json)!;
                result.ModelLoad = System.Text.RegularExpressions.Regex.Matches(output + errors, @"Loaded Stage .* in ([0-9.]+) s")
                    .Sum(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
                results.Add(result);
            }
        }

        static string S(double seconds) => seconds.ToString("F2", CultureInfo.InvariantCulture);
        static double Median(IEnumerable<double> values)
        {
            var sorted = values.OrderBy(v => v).ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
        Console.WriteLine($"# Warm start (tiny fixture models, CPU, embedded Durable engine): median of {runs} fresh processes per mode");
        Console.WriteLine();
        Console.WriteLine($"- machine: {Environment.ProcessorCount} cores; date: {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        Console.WriteLine();
        Console.WriteLine("| mode | process start → host up | preload | process start → ready | first request | second request | model loads (ModelHost) |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var group in results.GroupBy(r => r.Mode))
        {
            Console.WriteLine($"| {group.Key} | {S(Median(group.Select(r => r.ProcessToHost)))} s | {S(Median(group.Select(r => r.Preload)))} s | " +
                $"{S(Median(group.Select(r => r.ProcessToReady)))} s | **{S(Median(group.Select(r => r.FirstRequest)))} s** | {S(Median(group.Select(r => r.SecondRequest)))} s | " +
                $"{S(Median(group.Select(r => r.ModelLoad)))} s |");
        }
        Console.WriteLine();
        Console.WriteLine("Stage activities and the gaps between them (median over both modes' runs; ms):");
        Console.WriteLine();
        Console.WriteLine("| request | request → Stage C starts | Stage C | gap C → B | Stage B | gap B → A | Stage A |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (label, gapsOf, stagesOf) in new (string, Func<RunResult, double[]>, Func<RunResult, double[]>)[]
                 { ("first, cold", r => r.FirstGaps, r => r.FirstStages), ("first, preloaded", r => r.FirstGaps, r => r.FirstStages), ("second", r => r.SecondGaps, r => r.SecondStages) })
        {
            var chosen = results.Where(r => label == "second" || r.Mode == label.Split(", ")[1]).ToArray();
            double Ms(Func<RunResult, double> pick) => Median(chosen.Select(pick)) * 1000;
            string F(double ms) => ms.ToString("F0", CultureInfo.InvariantCulture);
            Console.WriteLine($"| {label} | {F(Ms(r => gapsOf(r)[0]))} | {F(Ms(r => stagesOf(r)[0]))} | {F(Ms(r => gapsOf(r)[1]))} | " +
                $"{F(Ms(r => stagesOf(r)[1]))} | {F(Ms(r => gapsOf(r)[2]))} | {F(Ms(r => stagesOf(r)[2]))} |");
        }
        Console.WriteLine();
        Console.WriteLine("Runs (s: host, preload, ready, first, second, model loads):");
        foreach (var r in results)
            Console.WriteLine($"- {r.Mode}: {S(r.ProcessToHost)}, {S(r.Preload)}, {S(r.ProcessToReady)}, {S(r.FirstRequest)}, {S(r.SecondRequest)}, {S(r.ModelLoad)}");
        return 0;
    }

    public static async Task<int> ChildAsync(string fixtures, bool preload)
    {
        var processStart = Process.GetCurrentProcess().StartTime.ToUniversalTime();
        using var temp = new TemporaryFolder();
        string models = LinkModels(fixtures, temp.Path);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Wuerstchen:Storage:Kind"] = "FileSystem",
            ["Wuerstchen:Storage:RootPath"] = Path.Combine(temp.Path, "store"),
            ["Wuerstchen:Models:Root"] = models,
            ["Wuerstchen:Models:CacheRoot"] = Path.Combine(temp.Path, "cache"),
            ["Wuerstchen:Preload:Enabled"] = preload ? "true" : "false",
            ["Wuerstchen:Workflows:ProgressInterval"] = "00:00:01",
        }).Build();
        var services = new ServiceCollection().AddLogging(l => l.SetMinimumLevel(LogLevel.Warning).AddFilter("Wuerstchen.Pipeline.Models.ModelHost", LogLevel.Information).AddSimpleConsole(c => c.SingleLine = true)).AddWuerstchenWorkflows(configuration)
            .BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        var clock = new StageClock();
        await using var engine = await EmbeddedDurableEngine.StartAsync(registry => Register(registry, services, clock));
        double host = (DateTime.UtcNow - processStart).TotalSeconds;

        double preloadSeconds = 0;
        if (preload)
        {
            var watch = Stopwatch.StartNew();
            var preloader = services.GetRequiredService<ModelPreloader>();
            await preloader.RunAsync(CancellationToken.None);
            preloadSeconds = watch.Elapsed.TotalSeconds;
            if (preloader.Status.State != PreloadState.Completed)
                throw new InvalidOperationException($"preload: {preloader.Status.Error}");
        }
        double ready = (DateTime.UtcNow - processStart).TotalSeconds;

        var request = Request(fixtures);
        var (first, firstGaps, firstStages) = await GenerateAsync(services, engine.Client, clock, request with { Seed = 1 });
        var (second, secondGaps, secondStages) = await GenerateAsync(services, engine.Client, clock, request with { Seed = 2 });
        Console.WriteLine(JsonSerializer.Serialize(new RunResult(preload ? "preloaded" : "cold", host, preloadSeconds, ready, first, second,
            firstGaps, secondGaps, firstStages, secondStages), Json));
        return 0;
    }

    /// <summary>The production orchestration and stage activities, each activity timed.</summary>
    private static void Register(DurableTaskRegistry registry, IServiceProvider services, StageClock clock)
    {
        registry.AddOrchestratorFunc<GenerationJob, GenerationResult>(GenerateImageOrchestration.Name, (context, job) => GenerateImageOrchestration.RunAsync(context, job));
        var activities = services.GetRequiredService<StageActivities>();
        registry.AddActivityFunc<StageWork, StageResult>(StageActivities.StageC, (_, w) => clock.TimeAsync(w.GenerationId, 0, () => activities.RunStageCAsync(w, CancellationToken.None)));
        registry.AddActivityFunc<StageWork, StageResult>(StageActivities.StageB, (_, w) => clock.TimeAsync(w.GenerationId, 1, () => activities.RunStageBAsync(w, CancellationToken.None)));
        registry.AddActivityFunc<StageWork, StageResult>(StageActivities.StageA, (_, w) => clock.TimeAsync(w.GenerationId, 2, () => activities.RunStageAAsync(w, CancellationToken.None)));
    }

    /// <summary>Seconds from the request to the completed orchestration, the three gaps and the three stages' durations.</summary>
    private static async Task<(double Seconds, double[] Gaps, double[] Stages)> GenerateAsync(IServiceProvider services, DurableTaskClient client, StageClock clock, GenerationRequest request)
    {
        var watch = Stopwatch.StartNew();
        long started = Stopwatch.GetTimestamp();
        var outcome = await services.GetRequiredService<GenerationService>().StartAsync(client, request, null, CancellationToken.None);
        if (outcome.Disposition != StartDisposition.Started)
            throw new InvalidOperationException($"the request was not started: {outcome.Disposition} {JsonSerializer.Serialize(outcome.Errors)}");
        var state = await client.WaitForInstanceCompletionAsync(outcome.GenerationId!, getInputsAndOutputs: false, CancellationToken.None);
        if (state.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
            throw new InvalidOperationException($"the generation ended {state.RuntimeStatus}: {state.FailureDetails?.ErrorMessage}");
        double seconds = watch.Elapsed.TotalSeconds;
        var stages = clock.Of(outcome.GenerationId!);
        double[] gaps =
        [
            Stopwatch.GetElapsedTime(started, stages[0].Start).TotalSeconds,
            Stopwatch.GetElapsedTime(stages[0].End, stages[1].Start).TotalSeconds,
            Stopwatch.GetElapsedTime(stages[1].End, stages[2].Start).TotalSeconds,
        ];
        return (seconds, gaps, stages.Select(s => Stopwatch.GetElapsedTime(s.Start, s.End).TotalSeconds).ToArray());
    }

    /// <summary>The request of the fixture case <c>pipeline_basic</c>, sized for the tiny models.</summary>
    private static GenerationRequest Request(string fixtures)
    {
        using var file = SafetensorsFile.Open(Path.Combine(fixtures, "cases", "pipeline_basic.safetensors"));
        using var document = JsonDocument.Parse(file.Metadata["case"]);
        var r = document.RootElement;
        return new GenerationRequest
        {
            Prompt = r.GetProperty("prompt").GetString(),
            Width = r.GetProperty("width").GetInt32(),
            Height = r.GetProperty("height").GetInt32(),
            Images = r.GetProperty("n").GetInt32(),
            PriorSteps = r.TryGetProperty("prior_steps", out var steps) && steps.ValueKind == JsonValueKind.Number ? steps.GetInt32() : null,
            PriorGuidance = r.GetProperty("prior_guidance").GetDouble(),
            DecoderSteps = r.GetProperty("decoder_steps").GetInt32(),
            DecoderGuidance = r.GetProperty("decoder_guidance").GetDouble(),
        };
    }

    /// <summary>A model root where the published names point at the fixture models, as a deployment's share would.</summary>
    private static string LinkModels(string fixtures, string temp)
    {
        string root = Path.Combine(temp, "models");
        Directory.CreateDirectory(Path.Combine(root, "warp-ai"));
        Directory.CreateSymbolicLink(Path.Combine(root, "warp-ai", "wuerstchen-prior"), Path.Combine(fixtures, "models", "prior-pipeline"));
        Directory.CreateSymbolicLink(Path.Combine(root, "warp-ai", "wuerstchen"), Path.Combine(fixtures, "models", "decoder-pipeline"));
        return root;
    }

    private sealed class StageClock
    {
        private readonly ConcurrentDictionary<string, (long Start, long End)[]> _stages = new();

        public async Task<T> TimeAsync<T>(string generationId, int stage, Func<Task<T>> work)
        {
            long start = Stopwatch.GetTimestamp();
            var result = await work();
            _stages.GetOrAdd(generationId, _ => new (long, long)[3])[stage] = (start, Stopwatch.GetTimestamp());
            return result;
        }

        public (long Start, long End)[] Of(string generationId) => _stages[generationId];
    }

    private sealed class TemporaryFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("wuerstchen-warmstart-").FullName;

        public void Dispose()
        {
            foreach (string link in Directory.EnumerateDirectories(System.IO.Path.Combine(Path, "models", "warp-ai")))
                File.Delete(link); // the links, never the fixtures behind them
            Directory.Delete(Path, recursive: true);
        }
    }
}
