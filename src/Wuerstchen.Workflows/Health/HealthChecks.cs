using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Workflows.Health;

/// <summary>One readiness condition and what was found.</summary>
public sealed record HealthCheck(string Name, bool Ok, string Detail);

/// <summary>What LibTorch and the NVIDIA driver offer this replica.</summary>
/// <param name="Configured"><c>Wuerstchen:Models:Device</c>.</param>
/// <param name="CudaAvailable">Whether LibTorch can use a CUDA device (false on the CPU build of TorchSharp).</param>
public sealed record DeviceReport(string Configured, string Precision, string Torch, bool CudaAvailable, GpuInfo Gpu);

/// <summary>Everything <c>GET /api/health</c> shows; <see cref="Ready"/> decides its status code.</summary>
public sealed record HealthReport(string Status, bool Ready, IReadOnlyList<HealthCheck> Checks, PreloadStatus Preload, DeviceReport Device, IReadOnlyList<string> Warnings);

/// <summary>
/// The three probes' questions. Liveness needs none of this (the process answers). Startup: the start-up work — the
/// preload — is over, successfully or not, so a slow model load never trips the liveness probe. Readiness: the store
/// answers, the model root is there, the device is usable (with <c>Device=cuda</c>, a replica without CUDA is never
/// ready), and the default models were made resident on that device.
/// </summary>
public sealed partial class HealthChecks(IServiceProvider services, IBlobStore store, ModelPreloader preloader,
    IOptions<ModelOptions> models, IOptions<PreloadOptions> preload, ILogger<HealthChecks> logger)
{
    /// <summary>How long the store may take to answer before readiness reports it unreachable.</summary>
    public static readonly TimeSpan StoreTimeout = TimeSpan.FromSeconds(5);

    private const string ProbeBlob = "health/probe";
    private string? _lastFailures;

    public bool StartupFinished => preloader.Status.Finished;

    public async Task<HealthReport> CheckAsync(CancellationToken cancellationToken)
    {
        var checks = new List<HealthCheck>
        {
            await StoreAsync(cancellationToken).ConfigureAwait(false),
            ModelRoot(),
        };
        var device = Device();
        checks.Add(DeviceCheck(device));
        checks.Add(Models());
        bool ready = checks.All(c => c.Ok);
        string failures = string.Join("; ", checks.Where(c => !c.Ok).Select(c => $"{c.Name}: {c.Detail}"));
        if (failures != Interlocked.Exchange(ref _lastFailures, failures) && failures.Length > 0)
            LogNotReady(failures);
        return new HealthReport(ready ? "ready" : "not ready", ready, checks, preloader.Status, device, Warnings(device));
    }

    private async Task<HealthCheck> StoreAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(StoreTimeout);
        try
        {
            await store.ExistsAsync(ProbeBlob, timeout.Token).ConfigureAwait(false);
            return new HealthCheck("store", true, $"{store.Description} answers");
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new HealthCheck("store", false, $"{store.Description} did not answer within {StoreTimeout.TotalSeconds:F0} s");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return new HealthCheck("store", false, $"{store.Description}: {e.GetType().Name}: {FirstLine(e.Message)}");
        }
    }

    private HealthCheck ModelRoot()
    {
        string root = models.Value.Root;
        if (string.IsNullOrWhiteSpace(root))
            return new HealthCheck("modelRoot", models.Value.Paths.Count > 0, models.Value.Paths.Count > 0
                ? "no root; models come from explicit paths"
                : $"{ModelOptions.Section}:Root is not set");
        return Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any()
            ? new HealthCheck("modelRoot", true, $"{root} is present")
            : new HealthCheck("modelRoot", false, Directory.Exists(root)
                ? $"{root} is empty: upload the models into the share (infra/README.md, \"Upload the models\")"
                : $"{root} does not exist: is the model share mounted?");
    }

    private DeviceReport Device()
    {
        bool cuda = torch.cuda.is_available();
        return new DeviceReport(models.Value.Device, models.Value.Precision, torch.__version__, cuda, GpuProbe.Current);
    }

    private static HealthCheck DeviceCheck(DeviceReport device)
    {
        if (device.Configured != "cuda")
            return new HealthCheck("device", true, $"{device.Configured} (LibTorch {device.Torch})");
        if (device.CudaAvailable)
        {
            string gpu = device.Gpu.Devices.Count > 0
                ? $"{device.Gpu.Devices[0].Name}, compute capability {device.Gpu.Devices[0].ComputeCapability}, driver {device.Gpu.DriverVersion ?? "?"} (CUDA {device.Gpu.CudaDriverVersion ?? "?"})"
                : "a CUDA device";
            return new HealthCheck("device", true, $"cuda: {gpu}");
        }
        return new HealthCheck("device", false,
            $"{ModelOptions.Section}:Device is cuda but LibTorch sees no CUDA device" + (device.Gpu.Problem is { } problem ? $" ({problem})" : "")
            + "; is this the CUDA image on a GPU workload profile?");
    }

    private HealthCheck Models()
    {
        var status = preloader.Status;
        string[] names = new[] { preload.Value.Prior, preload.Value.Decoder }.Where(n => !string.IsNullOrWhiteSpace(n)).ToArray();
        switch (status.State)
        {
            case PreloadState.Disabled:
                var locator = services.GetRequiredService<ModelLocator>();
                var missing = names.Where(n => locator.TryResolve(n, out _) is null).ToArray();
                return missing.Length == 0
                    ? new HealthCheck("models", true, "preload is off; the models load on first use")
                    : new HealthCheck("models", false, $"not found under the model root: {string.Join(", ", missing)}");
            case PreloadState.Pending or PreloadState.Loading:
                return new HealthCheck("models", false, $"loading {string.Join(" and ", names)} ({status.Models.Count} of {names.Length} resident so far)");
            case PreloadState.Failed:
                return new HealthCheck("models", false, $"preload failed: {status.Error}");
            default:
                return new HealthCheck("models", true, string.Join("; ", status.Models.Select(m => $"{m.Name} ({m.Stage}) on {m.Device}{Residency(m)}")));
        }
    }

    /// <summary>A model the host has since evicted loads again on its next use; the replica stays ready.</summary>
    private string Residency(PreloadedModel model)
    {
        var host = services.GetRequiredService<ModelHost>();
        bool resident = model.Stage == "Stage C" ? host.IsPriorResident(model.Name) : host.IsDecoderResident(model.Name);
        return resident ? ", resident" : ", evicted since (loads again on next use)";
    }

    private static List<string> Warnings(DeviceReport device)
    {
        var warnings = new List<string>();
        if (device.Configured == "cuda" && device.Precision == "bfloat16" && device.Gpu.ComputeCapability is < 8.0)
            warnings.Add($"bfloat16 on compute capability {device.Gpu.ComputeCapability:0.0} ({device.Gpu.Devices[0].Name}) has no tensor-core support; use float16 on this GPU (infra/README.md, \"GPU profile and precision\").");
        return warnings;
    }

    private static string FirstLine(string text) => text.Split('\n', 2)[0].Trim();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Not ready: {Failures}")]
    private partial void LogNotReady(string failures);
}
