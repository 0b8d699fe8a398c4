using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;

namespace Wuerstchen.Pipeline.Models;

/// <summary>
/// Keeps the pipelines resident: each model loads once per process, on first use, and stays. Each pipeline is used by
/// one caller at a time (its scheduler holds per-run state; on a GPU, one stage at a time is what fits anyway).
/// </summary>
public sealed partial class ModelHost(ModelLocator locator, IOptions<ModelOptions> options, ILogger<ModelHost> logger) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<Resident<WuerstchenPriorPipeline>>> _priors = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Resident<WuerstchenDecoderPipeline>>> _decoders = new(StringComparer.Ordinal);

    public InferenceOptions Inference { get; } = InferenceFrom(options.Value);

    /// <summary>Runs <paramref name="work"/> with the Stage C pipeline of model <paramref name="name"/>.</summary>
    public Task<T> WithPriorAsync<T>(string name, Func<WuerstchenPriorPipeline, T> work, CancellationToken cancellationToken) =>
        Get(_priors, name, "Stage C", path => WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(path), Inference)).UseAsync(work, cancellationToken);

    /// <summary>Runs <paramref name="work"/> with the Stage B/A pipeline of model <paramref name="name"/>.</summary>
    public Task<T> WithDecoderAsync<T>(string name, Func<WuerstchenDecoderPipeline, T> work, CancellationToken cancellationToken) =>
        Get(_decoders, name, "Stage B/A", path => WuerstchenDecoderPipeline.FromRepository(ModelRepository.Open(path), Inference)).UseAsync(work, cancellationToken);

    /// <summary>Whether the Stage C pipeline of model <paramref name="name"/> is loaded (for health checks: loads nothing).</summary>
    public bool IsPriorResident(string name) => IsLoaded(_priors, name);

    /// <summary>Whether the Stage B/A pipeline of model <paramref name="name"/> is loaded (for health checks: loads nothing).</summary>
    public bool IsDecoderResident(string name) => IsLoaded(_decoders, name);

    private static bool IsLoaded<T>(ConcurrentDictionary<string, Lazy<Resident<T>>> cache, string name) where T : IDisposable =>
        cache.TryGetValue(name, out var entry) && entry.IsValueCreated;

    /// <summary>The resident pipeline, loading it on first use; a failed load is forgotten so the next call tries again.</summary>
    private Resident<T> Get<T>(ConcurrentDictionary<string, Lazy<Resident<T>>> cache, string name, string stage, Func<string, T> load) where T : IDisposable
    {
        var entry = cache.GetOrAdd(name, n => new Lazy<Resident<T>>(() => Load(n, stage, load)));
        try
        {
            return entry.Value;
        }
        catch
        {
            cache.TryRemove(new KeyValuePair<string, Lazy<Resident<T>>>(name, entry));
            throw;
        }
    }

    private Resident<T> Load<T>(string name, string stage, Func<string, T> load) where T : IDisposable
    {
        string path = locator.Resolve(name);
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var pipeline = load(path);
        LogLoaded(stage, name, path, Inference.DType.ToString(), watch.Elapsed.TotalSeconds);
        return new Resident<T>(pipeline);
    }

    private static InferenceOptions InferenceFrom(ModelOptions options)
    {
        var device = options.Device == "cuda" ? InitializeCuda() : torch.CPU;
        var dtype = options.Precision switch
        {
            "bfloat16" => torch.ScalarType.BFloat16,
            "float16" => torch.ScalarType.Float16,
            _ => torch.ScalarType.Float32,
        };
        return new InferenceOptions { Device = device, DType = dtype };
    }

    private static torch.Device InitializeCuda()
    {
        torch.InitializeDeviceType(DeviceType.CUDA);
        if (!torch.cuda.is_available())
            throw new InvalidOperationException($"{ModelOptions.Section}:Device is cuda but no CUDA device is available to LibTorch.");
        return torch.CUDA;
    }

    public void Dispose()
    {
        foreach (var entry in _priors.Values.Where(l => l.IsValueCreated))
            entry.Value.Dispose();
        foreach (var entry in _decoders.Values.Where(l => l.IsValueCreated))
            entry.Value.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Loaded {Stage} model {ModelName} from {ModelPath} as {Precision} in {Seconds:F1} s")]
    private partial void LogLoaded(string stage, string modelName, string modelPath, string precision, double seconds);

    private sealed class Resident<T>(T pipeline) : IDisposable where T : IDisposable
    {
        /// <summary>How long disposing waits for a caller still inside the pipeline (an activity the host did not wait for).</summary>
        private static readonly TimeSpan DisposeWait = TimeSpan.FromMinutes(1);

        private readonly SemaphoreSlim _gate = new(1, 1);
        private bool _disposed;

        public async Task<TResult> UseAsync<TResult>(Func<T, TResult> work, CancellationToken cancellationToken)
        {
            await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                return work(pipeline);
            }
            finally
            {
                _gate.Release();
            }
        }

        /// <summary>
        /// Frees the pipeline once no caller is inside it, so a shutdown never frees native memory a running stage
        /// still uses; callers that come later get <see cref="ObjectDisposedException"/>.
        /// </summary>
        public void Dispose()
        {
            bool entered = _gate.Wait(DisposeWait);
            _disposed = true;
            if (!entered)
                return; // still in use after the wait: leave it to the finalizers rather than free memory in use
            pipeline.Dispose();
            _gate.Release();
        }
    }
}
