using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Workflows.Health;

[System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<PreloadState>))]
public enum PreloadState
{
    /// <summary>Preloading is switched off: models load on first use.</summary>
    Disabled,

    /// <summary>Not begun yet (the host has not started the preload).</summary>
    Pending,

    Loading,
    Completed,

    /// <summary>A model could not be loaded, or not on the configured device; <see cref="PreloadStatus.Error"/> says why.</summary>
    Failed,
}

/// <summary>One preloaded pipeline: which stage, the device its weights ended up on, how long the load took.</summary>
public sealed record PreloadedModel(string Stage, string Name, string Device, double Seconds);

public sealed record PreloadStatus(PreloadState State, IReadOnlyList<PreloadedModel> Models, string? Error, double? Seconds)
{
    /// <summary>Start-up work is over, whether it succeeded or not (the startup probe's question).</summary>
    public bool Finished => State is PreloadState.Disabled or PreloadState.Completed or PreloadState.Failed;
}

/// <summary>
/// Makes the configured default models resident through <see cref="ModelHost"/>'s public API (the same load a request
/// would trigger), so the first request after a scale-out does not pay it, and checks each landed on the configured
/// device. Runs once per process; <see cref="Status"/> is what the health checks read.
/// </summary>
public sealed partial class ModelPreloader(IServiceProvider services, IOptions<PreloadOptions> options, IOptions<ModelOptions> models, ILogger<ModelPreloader> logger)
{
    private readonly object _gate = new();
    private Task? _run;
    private volatile PreloadStatus _status = new(options.Value.Enabled ? PreloadState.Pending : PreloadState.Disabled, [], null, null);

    public PreloadStatus Status => _status;

    /// <summary>Starts the preload (once; later calls return the same task). Never throws: a failure lands in <see cref="Status"/>.</summary>
    public Task RunAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
            return _run ??= options.Value.Enabled ? Task.Run(() => PreloadAsync(cancellationToken), CancellationToken.None) : Task.CompletedTask;
    }

    private async Task PreloadAsync(CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        var loaded = new List<PreloadedModel>();
        _status = new PreloadStatus(PreloadState.Loading, loaded, null, null);
        string stage = "Stage C";
        string name = options.Value.Prior;
        try
        {
            // Resolving the host initialises the device: with Device=cuda and no usable GPU this is where it fails.
            var host = services.GetRequiredService<ModelHost>();
            if (!string.IsNullOrWhiteSpace(name))
                loaded.Add(await LoadAsync(stage, name, () => host.WithPriorAsync(name, p => DeviceOf(p.Prior), cancellationToken)).ConfigureAwait(false));
            stage = "Stage B/A";
            name = options.Value.Decoder;
            if (!string.IsNullOrWhiteSpace(name))
                loaded.Add(await LoadAsync(stage, name, () => host.WithDecoderAsync(name, p => DeviceOf(p.Decoder), cancellationToken)).ConfigureAwait(false));
            _status = new PreloadStatus(PreloadState.Completed, loaded.ToArray(), null, watch.Elapsed.TotalSeconds);
            LogCompleted(loaded.Count, watch.Elapsed.TotalSeconds);
        }
        catch (Exception e)
        {
            string error = $"{stage} model '{name}': {e.Message}";
            _status = new PreloadStatus(PreloadState.Failed, loaded.ToArray(), error, watch.Elapsed.TotalSeconds);
            LogFailed(e, error);
        }
    }

    private async Task<PreloadedModel> LoadAsync(string stage, string name, Func<Task<DeviceType>> load)
    {
        var watch = Stopwatch.StartNew();
        var device = await load().ConfigureAwait(false);
        string expected = models.Value.Device;
        string actual = device == DeviceType.CUDA ? "cuda" : device.ToString().ToLowerInvariant();
        if (actual != expected)
            throw new InvalidOperationException($"its weights are on {actual}, but {ModelOptions.Section}:Device is {expected}.");
        return new PreloadedModel(stage, name, actual, watch.Elapsed.TotalSeconds);
    }

    private static DeviceType DeviceOf(torch.nn.Module module) => module.parameters().First().device_type;

    [LoggerMessage(Level = LogLevel.Information, Message = "Preloaded {Count} model pipelines in {Seconds:F1} s; they are resident for readiness")]
    private partial void LogCompleted(int count, double seconds);

    [LoggerMessage(Level = LogLevel.Error, Message = "Preload failed, the replica stays not ready: {Error}")]
    private partial void LogFailed(Exception exception, string error);
}
