using System.Globalization;
using TorchSharp;
using Wuerstchen.Benchmarks;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Runtime;
using Wuerstchen.Models.Text;
using static TorchSharp.torch;

BenchmarkOptions options;
try
{
    options = BenchmarkOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}

if (options.Mode == BenchmarkMode.HttpLoad)
{
    var report = await HttpLoad.RunAsync(options, Console.Error);
    foreach (string line in report)
        Console.WriteLine(line);
    if (options.MarkdownPath is { } markdown)
        File.WriteAllLines(markdown, report);
    return 0;
}

try
{
    TorchRuntime.EnsureNativesLoaded();
    if (TorchRuntime.External?.VersionWarning is { } warning)
        Console.Error.WriteLine($"warning: {warning}");
}
catch (LibTorchNotFoundException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 3;
}

var lines = new List<string>();
void Report(string line)
{
    Console.WriteLine(line);
    lines.Add(line);
}

switch (options.Mode)
{
    case BenchmarkMode.Steps:
        StepBenchmark.Run(options, Report);
        break;
    case BenchmarkMode.SelfCheck:
        return SelfCheck(options);
    case BenchmarkMode.Load:
        set_num_threads(options.Threads);
        await LoadBenchmark.RunAsync(options, Path.GetFullPath(Path.Combine(TokenizerDirectory(options), "..", "..", "..")), Report);
        break;
    case BenchmarkMode.HostOverhead:
        set_num_threads(options.Threads);
        HostOverhead.Run(TokenizerDirectory(options), options.RepeatCount, Console.Out);
        break;
    default:
        if (RunPipelines(options, Report) is var code and not 0)
            return code;
        break;
}
if (options.MarkdownPath is { } path)
    File.WriteAllLines(path, lines);
return 0;

static int RunPipelines(BenchmarkOptions options, Action<string> report)
{
    var device = CPU;
    if (options.Device == "cuda")
    {
        InitializeDeviceType(DeviceType.CUDA);
        if (!cuda.is_available())
        {
            Console.Error.WriteLine($"error: --device cuda, but LibTorch sees no CUDA device ({TorchRuntime.Describe()}).");
            return 3;
        }
        device = CUDA;
    }
    var inference = new InferenceOptions { Device = device, DType = options.DType };
    inference.Validate();
    TorchRuntime.ConfigureMath(inference);
    using var memory = options.Device == "cuda" ? GpuMemory.TryOpen() : null;

    var models = options.Tiny ? BenchmarkModels.Tiny : BenchmarkModels.Published;
    var tokenizer = ClipTokenizer.FromDirectory(TokenizerDirectory(options));
    Console.Error.WriteLine($"Building {(options.Tiny ? "tiny" : "published")} models on {device} in {options.PrecisionName} ({TorchRuntime.Describe()})");
    var (prior, decoder) = models.Build(tokenizer, inference, (what, seconds) =>
        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {what}: built in {seconds:F2} s")));
    using (prior)
    using (decoder)
    {
        var results = PipelineBenchmark.Run(prior, decoder, options, memory, message => Console.Error.WriteLine("  " + message)).ToArray();
        var benchmark = new BenchmarkReport
        {
            Device = device.ToString(),
            Gpu = memory?.Name,
            Torch = TorchRuntime.Describe(),
            Precision = options.PrecisionName,
            Size = options.ImageSize,
            Models = options.Tiny ? "tiny configurations" : "published configurations, random weights",
            Repeats = options.RepeatCount,
            Date = DateTime.UtcNow.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture),
            Results = results,
        };
        if (options.ComparePath is { } compare)
            benchmark = benchmark.CompareWith(compare);
        foreach (string line in benchmark.Table())
            report(line);
        if (options.JsonPath is { } json)
            File.WriteAllText(json, benchmark.ToJson());
    }
    return 0;
}

static int SelfCheck(BenchmarkOptions options)
{
    Console.WriteLine($"TorchSharp backend: {TorchRuntime.Describe()}");
    var device = CPU;
    if (options.Device == "cuda")
    {
        InitializeDeviceType(DeviceType.CUDA);
        if (!cuda.is_available())
        {
            Console.Error.WriteLine($"error: --device cuda, but LibTorch sees no CUDA device ({TorchRuntime.Describe()}).");
            return 3;
        }
        device = CUDA;
        using var gpu = GpuMemory.TryOpen();
        Console.WriteLine($"CUDA devices: {cuda.device_count()}; device 0: {gpu?.Name ?? "(NVML not available)"}, {(gpu?.TotalBytes ?? 0) / (double)(1L << 30):F1} GiB");
    }
    using var scope = NewDisposeScope();
    var a = arange(6, dtype: float32, device: device).reshape(2, 3);
    var product = a.matmul(ones(3, 2, device: device)).cpu();
    Console.WriteLine($"arange(6).reshape(2, 3) · ones(3, 2) on {device} = [{string.Join(", ", product.data<float>().ToArray())}]");
    foreach (string library in LoadedLibraries("libtorch_cpu.so", "libtorch_cuda.so", "libLibTorchSharp.so"))
        Console.WriteLine($"loaded: {library}");
    return 0;
}

static IEnumerable<string> LoadedLibraries(params string[] names) =>
    File.ReadLines("/proc/self/maps").Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "")
        .Where(path => names.Contains(Path.GetFileName(path))).Distinct();

static string TokenizerDirectory(BenchmarkOptions options)
{
    if (options.TokenizerDirectory is { } given)
        return given;
    string? fixtures = Environment.GetEnvironmentVariable("WUERSTCHEN_PARITY_DIR");
    if (string.IsNullOrWhiteSpace(fixtures))
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Wuerstchen.Functions.sln")))
            root = root.Parent;
        fixtures = Path.Combine(root?.FullName ?? Directory.GetCurrentDirectory(), "..", "shared", "fixtures", "parity");
    }
    string directory = Path.Combine(fixtures, "models", "prior-pipeline", "tokenizer");
    return Directory.Exists(directory) ? directory
        : throw new DirectoryNotFoundException($"No CLIP tokenizer at {directory}; pass --tokenizer DIR (a folder with vocab.json and merges.txt).");
}
