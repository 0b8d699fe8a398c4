using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Workflows.Generation;

/// <summary>Why and when a generation was cancelled; the content of its cancel marker.</summary>
public sealed record CancelMarker(string GenerationId, string Reason, DateTimeOffset At);

/// <summary>
/// Stops a generation's running stage across workers. Durable Functions does not cancel a running activity (it only
/// stops waiting for it), so cancelling writes a marker blob, <c>generations/{id}/cancel.json</c>, that every stage of
/// that generation watches: it looks after each denoising step and at least every
/// <see cref="WorkflowOptions.CancelCheckInterval"/>, and cancels the token the stage runs under, so the loop stops at its
/// next step and the stage writes nothing. A stage in this process stops at once. A stage that starts after the marker
/// fails at once with <see cref="GenerationCancelledException"/>, which is never retried.
/// </summary>
public sealed partial class GenerationCancellation(IBlobStore store, IOptions<WorkflowOptions> options, ILogger<GenerationCancellation> logger)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);
    private readonly ConcurrentDictionary<string, StageWatch> _watching = new(StringComparer.Ordinal);

    private TimeSpan CheckInterval => options.Value.CancelCheckInterval;

    public static string MarkerBlobFor(string generationId) => $"generations/{generationId}/cancel.json";

    /// <summary>Writes the marker and stops the generation's stage if it runs in this process.</summary>
    public async Task RequestAsync(string generationId, string reason, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(new CancelMarker(generationId, reason, DateTimeOffset.UtcNow), Json));
        await store.WriteAsync(MarkerBlobFor(generationId), content, new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
        if (_watching.TryGetValue(generationId, out var watch))
            watch.CancelByClient();
    }

    public Task<bool> IsRequestedAsync(string generationId, CancellationToken cancellationToken) =>
        store.ExistsAsync(MarkerBlobFor(generationId), cancellationToken);

    /// <summary>
    /// Starts watching the generation's marker for a stage that runs under <paramref name="hostToken"/> (the host's own
    /// cancellation: shutdown, or Ctrl+C in the CLI); throws <see cref="GenerationCancelledException"/> when it is already there.
    /// </summary>
    public async Task<StageWatch> WatchAsync(string generationId, CancellationToken hostToken)
    {
        if (await IsRequestedAsync(generationId, hostToken).ConfigureAwait(false))
            throw new GenerationCancelledException(generationId);
        var watch = new StageWatch(this, generationId, hostToken);
        _watching[generationId] = watch;
        return watch;
    }

    /// <summary>One stage's view of its generation's cancellation: the token it runs under and the background checks.</summary>
    public sealed class StageWatch : IAsyncDisposable
    {
        private readonly GenerationCancellation _owner;
        private readonly string _generationId;
        private readonly CancellationTokenSource _cancel;
        private readonly CancellationTokenSource _stopChecking = new();
        private readonly SemaphoreSlim _stepEnded = new(0, 1);
        private readonly Task _checks;
        private volatile bool _byClient;

        internal StageWatch(GenerationCancellation owner, string generationId, CancellationToken hostToken)
        {
            _owner = owner;
            _generationId = generationId;
            _cancel = CancellationTokenSource.CreateLinkedTokenSource(hostToken);
            _checks = CheckLoopAsync();
        }

        /// <summary>Cancelled when the client cancels the generation or the host stops.</summary>
        public CancellationToken Token => _cancel.Token;

        /// <summary>Whether the stage stopped because the client cancelled the generation.</summary>
        public bool CancelledByClient => _byClient;

        /// <summary>A step ended: look for the marker now (one look at a time; a look already under way covers this step).</summary>
        public void StepEnded()
        {
            try
            {
                if (_stepEnded.CurrentCount == 0)
                    _stepEnded.Release();
            }
            catch (Exception e) when (e is SemaphoreFullException or ObjectDisposedException)
            {
            }
        }

        /// <summary>Forwards progress reports and treats each as the end of a step.</summary>
        public IProgress<StageProgress> Observe(IProgress<StageProgress> progress) => new StepObserver(this, progress);

        internal void CancelByClient()
        {
            _byClient = true;
            try
            {
                _cancel.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        private async Task CheckLoopAsync()
        {
            var interval = _owner.CheckInterval;
            var stop = _stopChecking.Token;
            while (!stop.IsCancellationRequested && !_cancel.IsCancellationRequested)
            {
                try
                {
                    using var wake = CancellationTokenSource.CreateLinkedTokenSource(stop, _cancel.Token);
                    wake.CancelAfter(interval);
                    await _stepEnded.WaitAsync(wake.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
                if (stop.IsCancellationRequested || _cancel.IsCancellationRequested)
                    return;
                try
                {
                    if (await _owner.IsRequestedAsync(_generationId, stop).ConfigureAwait(false))
                    {
                        _owner.LogCancelSeen(_generationId);
                        CancelByClient();
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // The marker is advisory; a failed look must not fail the stage. The next one may succeed.
                    _owner.LogCheckFailed(e, _generationId);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _owner._watching.TryRemove(new KeyValuePair<string, StageWatch>(_generationId, this));
            await _stopChecking.CancelAsync().ConfigureAwait(false);
            await _checks.ConfigureAwait(false);
            _stopChecking.Dispose();
            _cancel.Dispose();
            _stepEnded.Dispose();
        }

        private sealed class StepObserver(StageWatch watch, IProgress<StageProgress> inner) : IProgress<StageProgress>
        {
            public void Report(StageProgress value)
            {
                inner.Report(value);
                watch.StepEnded();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Generation {GenerationId} was cancelled; its running stage stops at its next step")]
    private partial void LogCancelSeen(string generationId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not look for the cancel marker of generation {GenerationId}")]
    private partial void LogCheckFailed(Exception exception, string generationId);
}
