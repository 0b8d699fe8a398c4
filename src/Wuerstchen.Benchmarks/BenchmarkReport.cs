using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wuerstchen.Benchmarks;

/// <summary>The pipeline benchmark's output: the JSON document (<c>--json</c>) and the markdown table printed and written with <c>--markdown</c>.</summary>
public sealed record BenchmarkReport
{
    public string System { get; init; } = "wuerstchen-functions";
    public required string Device { get; init; }
    public string? Gpu { get; init; }
    public required string Torch { get; init; }
    public required string Precision { get; init; }
    public required int Size { get; init; }
    public required string Models { get; init; }
    public required int Repeats { get; init; }
    public required string Date { get; init; }
    public required IReadOnlyList<BatchResult> Results { get; init; }

    /// <summary>Where the comparison figures came from (the anchor's <c>gpu</c> and <c>torch</c>), when <c>--compare</c> was given.</summary>
    public string? Diffusers { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        WriteIndented = true,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Adds diffusers' figures and our ratio per batch size from the anchor's JSON.</summary>
    public BenchmarkReport CompareWith(string diffusersJsonPath)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(diffusersJsonPath));
        var root = document.RootElement;
        if (!root.TryGetProperty("results", out var results) || results.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{diffusersJsonPath} has no 'results' array: it is not the output of anchors/diffusers/bench.py --json.");
        var theirs = new Dictionary<int, DiffusersComparison>();
        foreach (var entry in results.EnumerateArray())
        {
            if (entry.GetProperty("dtype").GetString() != Precision || entry.GetProperty("size").GetInt32() != Size)
                continue;
            theirs[entry.GetProperty("batch").GetInt32()] = new DiffusersComparison(entry.GetProperty("stage_c_s").GetDouble(),
                entry.GetProperty("stage_ba_s").GetDouble(), entry.GetProperty("per_image_s").GetDouble(), entry.GetProperty("peak_gib").GetDouble(), double.NaN);
        }
        string source = $"{Text(root, "system") ?? "diffusers"} on {Text(root, "gpu") ?? "?"}, torch {Text(root, "torch") ?? "?"}";
        return this with
        {
            Diffusers = source,
            Results = Results.Select(r => theirs.TryGetValue(r.Batch, out var d) ? r with { Diffusers = d with { Ratio = r.PerImageSeconds / d.PerImageSeconds } } : r).ToArray(),
        };
    }

    /// <summary>The side-by-side table (markdown), with the goals stated under it when diffusers' figures are there.</summary>
    public IEnumerable<string> Table()
    {
        bool compared = Results.Any(r => r.Diffusers is not null);
        yield return $"Würstchen Functions{(compared ? " vs diffusers" : "")}: {Models}, {Size}×{Size}, {Precision} on {Gpu ?? Device}; {Torch}; median of {Repeats} runs after a warm-up ({Date})";
        if (Diffusers is not null)
            yield return $"diffusers: {Diffusers} (best of its repeats; output stops at float tensors on the GPU)";
        yield return "";
        yield return "| batch | Stage C s | Stage B s | Stage A s | PNG s | text s (in C, B) | s / image | s / image with PNG | peak GPU GiB |" +
                     (compared ? " diffusers Stage C s | diffusers Stage B+A s | diffusers s / image | diffusers peak GiB | ours / diffusers |" : "");
        yield return "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |" + (compared ? " ---: | ---: | ---: | ---: | ---: |" : "");
        foreach (var r in Results)
        {
            if (r.Error is not null)
            {
                yield return $"| {r.Batch} | {r.Error} | | | | | | | |" + (compared ? " | | | | |" : "");
                continue;
            }
            string ours = $"| {r.Batch} | {F(r.StageCSeconds)} | {F(r.StageBSeconds)} | {F(r.StageASeconds)} | {F(r.PngSeconds)} | {F(r.TextSeconds)} | " +
                          $"**{F(r.PerImageSeconds)}** | {F(r.PerImageWithPngSeconds)} | {(r.PeakGpuGiB is { } g ? F(g, "F1") : "–")} |";
            yield return !compared ? ours : r.Diffusers is { } d
                ? ours + $" {F(d.StageCSeconds)} | {F(d.StageBASeconds)} | {F(d.PerImageSeconds)} | {F(d.PeakGiB, "F1")} | **{F(d.Ratio, "F2")}×** |"
                : ours + " – | – | – | – | – |";
        }
        if (compared)
        {
            yield return "";
            yield return "Goals: at most 0.8× diffusers' time per image at batch 1, at most 1.0× at every batch size. " + string.Join("; ",
                Results.Where(r => r.Diffusers is not null).Select(r =>
                {
                    double goal = r.Batch == 1 ? 0.8 : 1.0;
                    return $"batch {r.Batch}: {F(r.Diffusers!.Ratio, "F2")}× {(r.Diffusers.Ratio <= goal ? "met" : $"NOT met (goal {goal:F1}×)")}";
                })) + ".";
            yield return "Peak memory differs in kind: ours is the device memory in use by the process (NVML, CUDA context and cache included), diffusers' is PyTorch's max_memory_allocated.";
        }
    }

    private static string? Text(JsonElement root, string name) => root.TryGetProperty(name, out var value) ? value.GetString() : null;

    private static string F(double value, string format = "F3") =>
        double.IsNaN(value) ? "–" : value.ToString(format, CultureInfo.InvariantCulture);
}
