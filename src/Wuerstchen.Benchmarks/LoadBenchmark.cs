using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.StageB;
using Wuerstchen.Models.StageC;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Generation.Batching;
using Wuerstchen.Workflows;
using Wuerstchen.Workflows.Embedded;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Benchmarks;

/// <summary>
/// Throughput under load: N single-prompt generations started at once through <see cref="GenerationService"/> on the
/// embedded Durable engine, all three stage activities included, with the worker's batcher on and off in one run, and
/// beside them one request of N images (one batch of N through the same path). On a CPU the models are Stage C and
/// Stage B at the published depths, heads and block structure with one or two channels per head (the fixture's text
/// encoders and VQGAN) written as model repositories with random weights, so that a step costs what issuing its
/// operations costs, as kernel launches do on a GPU at batch 1; on a GPU Stage C and Stage B have the published widths
/// too (the text encoders and the VQGAN stay the fixture's); <c>--tiny</c> takes the fixture's models as they are.
/// Reports images per second, the median and 95th percentile of the time from start to completion per generation, and
/// the mean images per model call.
/// </summary>
public static class LoadBenchmark
{
    public sealed record Figures(double ImagesPerSecond, double P50Seconds, double P95Seconds, double MeanBatch, int Generations, double WallSeconds);

    public static async Task<int> RunAsync(BenchmarkOptions options, string fixtures, Action<string> report)
    {
        int concurrent = options.Concurrent;
        bool published = options.Device == "cuda" && !options.Tiny;
        int size = options.Size ?? (published ? 1024 : 128);
        // Two rounds of 8 on a CPU gave speedups from 1.7× to 2.2× between runs; six are steadier and take under a minute.
        int rounds = options.Repeats ?? (published ? 2 : 6);
        // The engine's sidecar logs every gRPC call at Information otherwise (as the CLI quiets it).
        if (Environment.GetEnvironmentVariable("Logging__LogLevel__Default") is null)
            Environment.SetEnvironmentVariable("Logging__LogLevel__Default", "Warning");
        var root = Directory.CreateTempSubdirectory("wuerstchen-load-");
        try
        {
            string models = WriteModels(root.FullName, fixtures, options.Tiny ? ModelWidths.Fixture : published ? ModelWidths.Published : ModelWidths.TinyWidths);
            string kind = options.Tiny ? "the fixture's tiny models" : published ? "published Stage C and B" : "published depths, heads and blocks at tiny widths";
            report($"Load: {concurrent} concurrent single-prompt generations of {size}² on {options.Device} ({kind}, {options.PrecisionName}), {rounds} round(s) after a warm-up, batching on and off; one request of {concurrent} images beside them");
            var (on, oneRequest) = await MeasureAsync(options, models, Path.Combine(root.FullName, "on"), batching: true, concurrent, size, rounds).ConfigureAwait(false);
            var (off, _) = await MeasureAsync(options, models, Path.Combine(root.FullName, "off"), batching: false, concurrent, size, rounds).ConfigureAwait(false);
            double concurrentOverOneBatch = oneRequest!.ImagesPerSecond / on.ImagesPerSecond;
            var lines = new List<string>
            {
                "| load | images/s | s per image | p50 s | p95 s | mean batch (images per model call) |",
                "| --- | --- | --- | --- | --- | --- |",
                Row($"{concurrent} concurrent single requests, batching on", on),
                Row($"{concurrent} concurrent single requests, batching off", off),
                Row($"one request of {concurrent} images", oneRequest),
                "",
                string.Create(CultureInfo.InvariantCulture, $"Throughput with batching on: {on.ImagesPerSecond / off.ImagesPerSecond:F2}× batching off."),
                string.Create(CultureInfo.InvariantCulture,
                    $"Time per image of {concurrent} concurrent single requests over one batch of {concurrent}: {concurrentOverOneBatch:F2}× ({(concurrentOverOneBatch - 1) * 100:+0;-0}%)."),
            };
            foreach (string line in lines)
                report(line);
            if (options.MarkdownPath is { } markdown)
                await File.WriteAllLinesAsync(markdown, lines).ConfigureAwait(false);
            if (options.JsonPath is { } path)
            {
                var json = new JsonObject
                {
                    ["concurrent"] = concurrent,
                    ["size"] = size,
                    ["device"] = options.Device,
                    ["rounds"] = rounds,
                    ["system"] = $"{Environment.ProcessorCount} CPUs, {Environment.OSVersion}",
                    ["batchingOn"] = JsonSerializer.SerializeToNode(on, Json),
                    ["batchingOff"] = JsonSerializer.SerializeToNode(off, Json),
                    ["oneRequest"] = JsonSerializer.SerializeToNode(oneRequest, Json),
                    ["speedup"] = Math.Round(on.ImagesPerSecond / off.ImagesPerSecond, 3),
                    ["concurrentOverOneBatch"] = Math.Round(concurrentOverOneBatch, 3),
                };
                await File.WriteAllTextAsync(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true })).ConfigureAwait(false);
            }
            return 0;
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private static string Row(string name, Figures f) => string.Create(CultureInfo.InvariantCulture,
        $"| {name} | {f.ImagesPerSecond:F3} | {1 / f.ImagesPerSecond:F3} | {f.P50Seconds:F2} | {f.P95Seconds:F2} | {f.MeanBatch:F2} |");

    /// <summary>The concurrent rounds' figures; with batching, also those of one request of that many images per round.</summary>
    private static async Task<(Figures Concurrent, Figures? OneRequest)> MeasureAsync(BenchmarkOptions options, string models, string work, bool batching, int concurrent, int size, int rounds)
    {
        var values = new Dictionary<string, string?>
        {
            ["Wuerstchen:Storage:Kind"] = "FileSystem",
            ["Wuerstchen:Storage:RootPath"] = Path.Combine(work, "store"),
            ["Wuerstchen:Models:Root"] = models,
            ["Wuerstchen:Models:CacheRoot"] = Path.Combine(work, "model-cache"),
            ["Wuerstchen:Models:Device"] = options.Device,
            ["Wuerstchen:Models:Precision"] = options.PrecisionName,
            ["Wuerstchen:Batching:MaxBatchImages"] = batching ? concurrent.ToString(CultureInfo.InvariantCulture) : "1",
            ["Wuerstchen:Batching:MaxConcurrentStageActivities"] = (2 * concurrent).ToString(CultureInfo.InvariantCulture),
            ["Wuerstchen:Limits:MaxImages"] = Math.Max(4, concurrent).ToString(CultureInfo.InvariantCulture),
        };
        if (options.MaxWait is { } wait)
            values["Wuerstchen:Batching:MaxWait"] = wait.ToString("c", CultureInfo.InvariantCulture);
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning).AddConsole()
            .AddFilter(typeof(StageBatcher).FullName, options.Verbose ? LogLevel.Debug : LogLevel.Warning));
        services.AddWuerstchenWorkflows(configuration);
        await using var provider = services.BuildServiceProvider();
        provider.ValidateSettings();
        var generations = provider.GetRequiredService<GenerationService>();
        var batcher = provider.GetRequiredService<StageBatcher>();
        // The engine takes every stage activity the batcher may hold, and room for the other activities beside them.
        await using var durable = await EmbeddedDurableEngine.StartAsync(registry => registry.AddWuerstchenWorkflows(provider), loggerFactory: null,
            batcher.MaxConcurrentStageActivities + 4).ConfigureAwait(false);

        // The warm-up loads the models and runs every path once.
        await RunRoundAsync(generations, durable.Client, "warm-up", 1, size).ConfigureAwait(false);
        if (batching)
            await RunRoundAsync(generations, durable.Client, "warm-up of one batch", 1, size, images: concurrent).ConfigureAwait(false);

        async Task<Figures> Measure(string name, int requests, int images)
        {
            var (callsBefore, imagesBefore) = batcher.Totals;
            var latencies = new List<double>();
            var watch = Stopwatch.StartNew();
            for (int round = 0; round < rounds; round++)
                latencies.AddRange(await RunRoundAsync(generations, durable.Client, $"{name} {round}", requests, size, images).ConfigureAwait(false));
            double wall = watch.Elapsed.TotalSeconds;
            var (calls, imagesAfter) = batcher.Totals;
            latencies.Sort();
            return new Figures(latencies.Count * images / wall, Percentile(latencies, 0.5), Percentile(latencies, 0.95),
                (double)(imagesAfter - imagesBefore) / Math.Max(1, calls - callsBefore), latencies.Count, wall);
        }

        var concurrentFigures = await Measure("round", concurrent, 1).ConfigureAwait(false);
        var oneRequest = batching ? await Measure("one batch", 1, concurrent).ConfigureAwait(false) : null;
        return (concurrentFigures, oneRequest);
    }

    /// <summary>Starts <paramref name="count"/> generations at once and returns each one's seconds from start to completion.</summary>
    private static async Task<double[]> RunRoundAsync(GenerationService generations, Microsoft.DurableTask.Client.DurableTaskClient client, string round, int count, int size,
        int images = 1)
    {
        return await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            var watch = Stopwatch.StartNew();
            var request = new GenerationRequest
            {
                Prompt = $"load test {round}, prompt {i}: a lighthouse in a storm", Seed = 1000 + i, Width = size, Height = size, Images = images,
            };
            var outcome = await generations.StartAsync(client, request, idempotencyKey: null, CancellationToken.None).ConfigureAwait(false);
            if (outcome.Disposition != StartDisposition.Started)
                throw new InvalidOperationException($"The generation was not started: {outcome.Disposition} {JsonSerializer.Serialize(outcome.Errors)}");
            var done = await client.WaitForInstanceCompletionAsync(outcome.GenerationId!, getInputsAndOutputs: false).ConfigureAwait(false);
            if (done.RuntimeStatus != Microsoft.DurableTask.Client.OrchestrationRuntimeStatus.Completed)
                throw new InvalidOperationException($"Generation {outcome.GenerationId} ended {done.RuntimeStatus}: {done.FailureDetails?.ErrorMessage}");
            return watch.Elapsed.TotalSeconds;
        })).ConfigureAwait(false);
    }

    private static double Percentile(List<double> sorted, double p)
    {
        double index = p * (sorted.Count - 1);
        int lower = (int)Math.Floor(index), upper = (int)Math.Ceiling(index);
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (index - lower);
    }

    /// <summary>
    /// Stage C at the published depth and block structure, 24 channels wide, with one attention head: a head as wide as
    /// the channels, as the published heads are 64 wide. At the published 24 heads a head would be one channel wide, and
    /// the CPU's attention kernel, which works head by head, would cost five times as much at a batch of 16 as at 2 —
    /// compute the published model does not have per head, not the per-operation cost this benchmark is about.
    /// </summary>
    private static readonly WuerstchenPriorConfig LoadPriorConfig = WuerstchenPriorConfig.Published with { C = 24, Nhead = 1 };

    /// <summary>Stage B's widths per level, one attention head where the published levels attend (see <see cref="LoadPriorConfig"/>).</summary>
    private static readonly int[] LoadDecoderWidths = [8, 20, 20, 20];

    private static readonly int[] LoadDecoderHeads = [-1, 1, 1, 1];

    private enum ModelWidths
    {
        /// <summary>The fixture's tiny models as they are.</summary>
        Fixture,
        /// <summary>Stage C and Stage B at the published depths, heads and block structure, one or two channels per head.</summary>
        TinyWidths,
        /// <summary>Stage C and Stage B as published (the text encoders' and VQGAN's stay the fixture's).</summary>
        Published,
    }

    /// <summary>
    /// The fixture's pipelines, Stage C and Stage B replaced as <paramref name="widths"/> says (random weights), under
    /// the published model names, as a model root.
    /// </summary>
    private static string WriteModels(string root, string fixtures, ModelWidths widths)
    {
        string models = Path.Combine(root, "models");
        string prior = Path.Combine(models, "warp-ai", "wuerstchen-prior");
        string decoder = Path.Combine(models, "warp-ai", "wuerstchen");
        Copy(Path.Combine(fixtures, "models", "prior-pipeline"), prior);
        Copy(Path.Combine(fixtures, "models", "decoder-pipeline"), decoder);
        if (widths == ModelWidths.Fixture)
            return models;

        var priorShape = widths == ModelWidths.Published ? WuerstchenPriorConfig.Published : LoadPriorConfig;
        var priorConfig = Patch(Path.Combine(prior, "prior", "config.json"), new()
        {
            ["c"] = priorShape.C,
            ["depth"] = priorShape.Depth,
            ["nhead"] = priorShape.Nhead,
        });
        using (var module = new WuerstchenPrior(WuerstchenPriorConfig.Read(priorConfig)))
            SafetensorsWriter.Save(Path.Combine(prior, "prior", "diffusion_pytorch_model.safetensors"), module.state_dict());

        var published = WuerstchenDiffNeXtConfig.Published;
        var decoderConfig = Patch(Path.Combine(decoder, "decoder", "config.json"), new()
        {
            ["c_hidden"] = new JsonArray((widths == ModelWidths.Published ? published.CHidden : LoadDecoderWidths).Select(c => (JsonNode)c).ToArray()),
            ["blocks"] = new JsonArray(published.Blocks.Select(c => (JsonNode)c).ToArray()),
            ["nhead"] = new JsonArray((widths == ModelWidths.Published ? published.Nhead : LoadDecoderHeads).Select(c => (JsonNode)c).ToArray()),
            ["level_config"] = new JsonArray(published.LevelConfig.Select(c => (JsonNode)c).ToArray()),
        });
        using (var module = new WuerstchenDiffNeXt(WuerstchenDiffNeXtConfig.Read(decoderConfig)))
            SafetensorsWriter.Save(Path.Combine(decoder, "decoder", "diffusion_pytorch_model.safetensors"), module.state_dict());
        return models;
    }

    private static string Patch(string path, Dictionary<string, JsonNode?> values)
    {
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        foreach (var (key, value) in values)
            config[key] = value;
        File.WriteAllText(path, config.ToJsonString());
        return path;
    }

    private static void Copy(string from, string to)
    {
        foreach (string directory in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, directory)));
        Directory.CreateDirectory(to);
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(to, Path.GetRelativePath(from, file));
            File.Copy(file, target);
            File.SetAttributes(target, FileAttributes.Normal);
        }
    }
}
