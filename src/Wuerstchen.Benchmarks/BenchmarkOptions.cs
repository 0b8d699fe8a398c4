using System.Globalization;
using TorchSharp;

namespace Wuerstchen.Benchmarks;

/// <summary>What the benchmark measures.</summary>
public enum BenchmarkMode
{
    /// <summary>The pipelines end to end, per batch size: the figure to compare with diffusers.</summary>
    Pipelines,

    /// <summary>One step of each stage at full size, and Stage C's FLOP rate against the machine's matmul rate (CPU figures).</summary>
    Steps,

    /// <summary>Per-step host overhead at the published depths with tiny widths (see <see cref="HostOverhead"/>).</summary>
    HostOverhead,

    /// <summary>Which LibTorch loaded from where, and one product on the device: a quick check of a build or a pack.</summary>
    SelfCheck,

    /// <summary>HTTP load against a running <c>wuerstchen serve</c> on loopback (see <see cref="HttpLoad"/>).</summary>
    HttpLoad,

    /// <summary>Concurrent single-prompt generations through the workflows, batching on and off (see <see cref="LoadBenchmark"/>).</summary>
    Load,
}

/// <summary>The command line; <see cref="Usage"/> lists it.</summary>
public sealed record BenchmarkOptions
{
    public const string Usage =
        "Usage: Wuerstchen.Benchmarks [--device cpu|cuda] [--precision float32|bfloat16|float16] [--batches 1,4,8,16] [--size 1024]\n" +
        "                             [--repeats 2] [--tiny] [--json FILE] [--markdown FILE] [--compare diffusers.json] [--tokenizer DIR]\n" +
        "       Wuerstchen.Benchmarks --steps [--sizes 1024,512] [--repeats 2] [--tiny] [--markdown FILE]\n" +
        "       Wuerstchen.Benchmarks --host-overhead [--repeats 5] [--threads 1] [--tokenizer DIR]\n" +
        "       Wuerstchen.Benchmarks --self-check [--device cpu|cuda]\n" +
        "       Wuerstchen.Benchmarks --http-load --url http://127.0.0.1:PORT/ [--api-key KEY] [--requests 2000] [--duration 60] [--concurrency 8] [--markdown FILE]\n" +
        "       Wuerstchen.Benchmarks --load [--device cpu|cuda] [--tiny] [--concurrent 8] [--repeats 6] [--size 128] [--max-wait 00:00:00.020] [--verbose] [--json FILE] [--markdown FILE]";

    public BenchmarkMode Mode { get; init; } = BenchmarkMode.Pipelines;

    public string Device { get; init; } = "cpu";

    /// <summary>Null for the device's default: bfloat16 on a GPU, float32 on a CPU.</summary>
    public string? Precision { get; init; }

    /// <summary>Null for the default: 1, 4, 8, 16 on a GPU; 1 on a CPU.</summary>
    public IReadOnlyList<int>? Batches { get; init; }

    /// <summary>Image side in pixels for the pipeline runs; null for 1024 (256 with --tiny).</summary>
    public int? Size { get; init; }

    /// <summary>Image sides for --steps.</summary>
    public IReadOnlyList<int> Sizes { get; init; } = [1024, 512];

    /// <summary>Measured runs per figure, after one warm-up run; the median is reported. Null for the mode's default.</summary>
    public int? Repeats { get; init; }

    /// <summary>Tiny configurations instead of the published ones: the same code path, in seconds, on a CPU.</summary>
    public bool Tiny { get; init; }

    public int Threads { get; init; } = 1;

    /// <summary>--load: print each batched model call.</summary>
    public bool Verbose { get; init; }

    /// <summary>Generations started at once per round in --load.</summary>
    public int Concurrent { get; init; } = 8;

    /// <summary>The batcher's maximum wait in --load; null for the device's default (none on a CPU).</summary>
    public TimeSpan? MaxWait { get; init; }

    public string? JsonPath { get; init; }

    public string? MarkdownPath { get; init; }

    /// <summary>The <c>wuerstchen serve</c> to load (--http-load): a loopback URL only.</summary>
    public Uri? Url { get; init; }

    public string? ApiKey { get; init; }

    /// <summary>--http-load: the most requests sent in all (both phases together).</summary>
    public int Requests { get; init; } = 2000;

    /// <summary>--http-load: the longest the load runs, in seconds (both phases together).</summary>
    public int DurationSeconds { get; init; } = 60;

    /// <summary>--http-load: requests in flight at once.</summary>
    public int Concurrency { get; init; } = 8;

    /// <summary>The JSON that <c>anchors/diffusers/bench.py --json</c> wrote, for a ratio column.</summary>
    public string? ComparePath { get; init; }

    /// <summary>CLIP's vocab.json and merges.txt; null for the parity fixtures' tokenizer beside the repository.</summary>
    public string? TokenizerDirectory { get; init; }

    public torch.ScalarType DType => (Precision ?? (Device == "cuda" ? "bfloat16" : "float32")) switch
    {
        "bfloat16" => torch.ScalarType.BFloat16,
        "float16" => torch.ScalarType.Float16,
        _ => torch.ScalarType.Float32,
    };

    public string PrecisionName => DType switch
    {
        torch.ScalarType.BFloat16 => "bfloat16",
        torch.ScalarType.Float16 => "float16",
        _ => "float32",
    };

    public IReadOnlyList<int> BatchSizes => Batches ?? (Device == "cuda" ? [1, 4, 8, 16] : [1]);

    public int ImageSize => Size ?? (Tiny ? 128 : 1024);

    public int RepeatCount => Repeats ?? (Mode == BenchmarkMode.HostOverhead ? 5 : 2);

    public static BenchmarkOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchmarkOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            options = name switch
            {
                "--device" => options with { Device = OneOf(name, Value(), "cpu", "cuda") },
                "--precision" => options with { Precision = OneOf(name, Value(), "float32", "bfloat16", "float16") },
                "--batches" => options with { Batches = ParseList(name, Value(), ParseBatch) },
                "--size" => options with { Size = ParseSize(name, Value()) },
                "--sizes" => options with { Sizes = ParseList(name, Value(), text => ParseSize(name, text)) },
                "--repeats" => options with { Repeats = ParsePositive(name, Value()) },
                "--threads" => options with { Threads = ParsePositive(name, Value()) },
                "--tiny" => options with { Tiny = true },
                "--steps" => options with { Mode = BenchmarkMode.Steps },
                "--host-overhead" => options with { Mode = BenchmarkMode.HostOverhead },
                "--self-check" => options with { Mode = BenchmarkMode.SelfCheck },
                "--http-load" => options with { Mode = BenchmarkMode.HttpLoad },
                "--url" => options with { Url = ParseLoopbackUrl(Value()) },
                "--api-key" => options with { ApiKey = Value() },
                "--requests" => options with { Requests = ParsePositive(name, Value()) },
                "--duration" => options with { DurationSeconds = ParsePositive(name, Value()) },
                "--concurrency" => options with { Concurrency = Math.Min(256, ParsePositive(name, Value())) },
                "--load" => options with { Mode = BenchmarkMode.Load },
                "--verbose" => options with { Verbose = true },
                "--concurrent" => options with { Concurrent = ParsePositive(name, Value()) },
                "--max-wait" => options with
                {
                    MaxWait = TimeSpan.TryParse(Value(), CultureInfo.InvariantCulture, out var wait) && wait >= TimeSpan.Zero
                        ? wait : throw new ArgumentException($"--max-wait: '{args[i]}' is not a time span such as 00:00:00.020."),
                },
                "--json" => options with { JsonPath = Value() },
                "--markdown" => options with { MarkdownPath = Value() },
                "--compare" => options with { ComparePath = File.Exists(Value()) ? args[i] : throw new ArgumentException($"--compare: no file '{args[i]}'.") },
                "--tokenizer" => options with
                {
                    TokenizerDirectory = Directory.Exists(Value()) ? args[i] : throw new ArgumentException($"--tokenizer: no folder '{args[i]}'."),
                },
                _ => throw new ArgumentException($"Unknown option '{name}'.\n{Usage}"),
            };
        }
        if (options.Mode == BenchmarkMode.Steps && options.Device != "cpu")
            throw new ArgumentException("--steps measures CPU figures; use the pipeline mode (the default) on a GPU.");
        if (options.Mode == BenchmarkMode.HttpLoad && options.Url is null)
            throw new ArgumentException("--http-load needs --url, the address wuerstchen serve printed (http://127.0.0.1:PORT/).");
        if (options.Url is not null && options.Mode != BenchmarkMode.HttpLoad)
            throw new ArgumentException("--url goes with --http-load.");
        if (options.ComparePath is not null && options.Mode != BenchmarkMode.Pipelines)
            throw new ArgumentException("--compare goes with the pipeline mode.");
        return options;
    }

    private static Uri ParseLoopbackUrl(string text) =>
        Uri.TryCreate(text.EndsWith('/') ? text : text + "/", UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" && uri.IsLoopback
            ? uri : throw new ArgumentException($"--url must be an http(s) URL on loopback (the load stays on this machine), not '{text}'.");

    private static string OneOf(string name, string value, params string[] allowed) =>
        allowed.Contains(value) ? value : throw new ArgumentException($"{name} must be {string.Join(" or ", allowed)}, not '{value}'.");

    private static IReadOnlyList<int> ParseList(string name, string text, Func<string, int> parse)
    {
        var values = text.Split(',', StringSplitOptions.TrimEntries).Select(parse).ToArray();
        if (values.Length == 0 || values.Distinct().Count() != values.Length)
            throw new ArgumentException($"{name} takes a comma-separated list of distinct values, e.g. 1,4,8,16; got '{text}'.");
        return values;
    }

    private static int ParseBatch(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int batch) && batch is > 0 and <= 1024
            ? batch : throw new ArgumentException($"--batches: '{text}' is not a batch size from 1 to 1024.");

    private static int ParsePositive(string name, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value : throw new ArgumentException($"{name} must be a positive whole number, not '{text}'.");

    private static int ParseSize(string name, string text)
    {
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int size))
            throw new ArgumentException($"{name}: '{text}' is not a size in pixels.");
        Models.Pipelines.ImageSize.Validate(size, size);
        return size;
    }
}
