using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Generation.Batching;

/// <summary>
/// One request's part of a batched model call: how many images it adds, the token that removes it, and where its
/// result goes. Subclasses carry the stage's inputs and say what their part of the batch's output is.
/// </summary>
public abstract class BatchEntry(int images, CancellationToken token)
{
    public int Images { get; } = images > 0 ? images : throw new ArgumentOutOfRangeException(nameof(images), images, "An entry adds at least one image.");

    public CancellationToken Token { get; } = token;

    internal long EnqueuedAt { get; set; }

    /// <summary>What the model call does, for the logs (the stage's name).</summary>
    public virtual string Stage => "Batch";

    /// <summary>
    /// What identifies this request's work from one stage to the next (a generation's batch), or null. With
    /// <see cref="NextKey"/>, the batcher expects it at the next stage after a model call it shared, so that the batch
    /// moves on together instead of its first arrival running alone.
    /// </summary>
    public virtual string? CohortId => null;

    /// <summary>The batch key of the stage this request goes to next; null after the last stage.</summary>
    public virtual string? NextKey => null;

    /// <summary>The entry waits for a batch to form (or for the model to be free).</summary>
    public virtual void OnWaiting()
    {
    }

    /// <summary>The entry is in a model call of <paramref name="batchImages"/> images in all.</summary>
    public virtual void OnBatched(int batchImages)
    {
    }

}

/// <inheritdoc cref="BatchEntry"/>
public abstract class BatchEntry<TResult>(int images, CancellationToken token) : BatchEntry(images, token)
{
    internal TaskCompletionSource<TResult> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Frees a result nobody takes (its request was cancelled while its batch ran).</summary>
    public virtual void Discard(TResult result) => (result as IDisposable)?.Dispose();
}

/// <summary>
/// Dynamic batching of stage work in a worker, as inference servers batch requests: entries with the same key (same
/// stage, model, size, schedule, guidance and precision) that arrive within <see cref="MaxWait"/> of the first, or while
/// the model is busy with an earlier batch, go into one model call of at most <see cref="MaxBatchImages"/> images,
/// in arrival order. A request never waits longer than <see cref="MaxWait"/> for a batch to fill. A batch that fails is
/// split in halves and each half run again, so an out-of-memory error costs a smaller batch instead of the requests,
/// and a bad item fails only its own request; an entry whose token is cancelled leaves its batch at once (before its
/// batch starts it is never computed; once it runs, the others go on and its result is discarded), and a batch all of
/// whose entries are cancelled stops within a step. Requests that shared a model call move on to the next stage
/// together: the batcher expects them there (<see cref="BatchEntry.CohortId"/>), and the first to arrive waits for the
/// others up to <see cref="CohortWait"/> (a member that never comes, because it failed, was cancelled or went to
/// another worker, costs the others that much at most).
/// </summary>
public sealed partial class StageBatcher
{
    private readonly object _lock = new();
    private readonly Dictionary<string, object> _queues = new(StringComparer.Ordinal);
    /// <summary>Per batch key, the requests expected there from a model call they shared, and when that call ended.</summary>
    private readonly Dictionary<string, List<(string CohortId, long Since)>> _expected = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _activitySlots;
    private readonly ILogger<StageBatcher> _logger;
    private readonly TimeProvider _time;

    public StageBatcher(IOptions<BatchingOptions> options, IOptions<ModelOptions> models, ILogger<StageBatcher> logger, TimeProvider? time = null)
    {
        MaxBatchImages = options.Value.EffectiveMaxBatchImages(models.Value);
        MaxWait = options.Value.EffectiveMaxWait(models.Value);
        MaxConcurrentStageActivities = options.Value.EffectiveMaxConcurrentStageActivities(models.Value);
        CohortWait = options.Value.EffectiveCohortWait(models.Value);
        _activitySlots = new SemaphoreSlim(MaxConcurrentStageActivities, MaxConcurrentStageActivities);
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    public int MaxBatchImages { get; }

    public TimeSpan MaxWait { get; }

    public int MaxConcurrentStageActivities { get; }

    /// <summary>How long requests that shared a model call wait for each other at the next stage; zero: not at all.</summary>
    public TimeSpan CohortWait { get; }

    /// <summary>Requests expected at some stage from a model call they shared, not yet arrived nor given up on (for tests).</summary>
    internal int ExpectedRequests
    {
        get
        {
            lock (_lock)
                return _expected.Values.Sum(list => list.Count);
        }
    }

    private long _calls;
    private long _images;

    /// <summary>Model calls that succeeded since start, and the images they held (their mean is the mean batch).</summary>
    public (long Calls, long Images) Totals => (Interlocked.Read(ref _calls), Interlocked.Read(ref _images));

    /// <summary>
    /// Takes one of the worker's <see cref="MaxConcurrentStageActivities"/> slots for a stage activity (on the embedded
    /// engine, which has no limit of its own, this is the only one); dispose it when the activity ends.
    /// </summary>
    public async Task<IDisposable> EnterActivityAsync(CancellationToken cancellationToken)
    {
        await _activitySlots.WaitAsync(cancellationToken).ConfigureAwait(false);
        return new Slot(_activitySlots);
    }

    /// <summary>
    /// Queues <paramref name="entry"/> under <paramref name="key"/> and returns its part of the batch's result.
    /// <paramref name="withModel"/> gets hold of the model and, once it has it, takes the batch (whatever has queued by
    /// then) and runs it through <see cref="Execute{TEntry,TResult}"/>; the first entry of a key's queue supplies it.
    /// </summary>
    public async Task<TResult> RunAsync<TEntry, TResult>(string key, TEntry entry, Func<Func<IReadOnlyList<TEntry>>, Task> withModel)
        where TEntry : BatchEntry<TResult>
    {
        entry.Token.ThrowIfCancellationRequested();
        KeyQueue<TEntry> queue;
        bool startDispatcher;
        lock (_lock)
        {
            if (!_queues.TryGetValue(key, out var existing))
                _queues[key] = existing = new KeyQueue<TEntry>(withModel);
            queue = (KeyQueue<TEntry>)existing;
            entry.EnqueuedAt = _time.GetTimestamp();
            queue.Pending.Add(entry);
            Arrive(key, entry.CohortId);
            startDispatcher = !queue.Dispatching;
            queue.Dispatching = true;
        }
        queue.Arrived.Release();
        entry.OnWaiting();
        await using var removal = entry.Token.Register(() =>
        {
            lock (_lock)
                queue.Pending.Remove(entry);
            entry.Completion.TrySetCanceled(entry.Token);
        }).ConfigureAwait(false);
        if (startDispatcher)
            _ = Task.Run(() => DispatchAsync<TEntry, TResult>(key, queue));
        return await entry.Completion.Task.ConfigureAwait(false);
    }

    /// <summary>Runs a key's batches one after another while entries are queued.</summary>
    private async Task DispatchAsync<TEntry, TResult>(string key, KeyQueue<TEntry> queue) where TEntry : BatchEntry<TResult>
    {
        while (true)
        {
            await WaitForBatchAsync(key, queue).ConfigureAwait(false);
            IReadOnlyList<TEntry>? taken = null;
            try
            {
                await queue.WithModel(() => taken = Take(queue)).ConfigureAwait(false);
                if (taken is null)
                    throw new InvalidOperationException("The model call ended without taking its batch.");
            }
            catch (Exception e)
            {
                // The model could not be had (it failed to load, or the host is shutting down): every entry that
                // would have gone into this batch fails the same way.
                taken ??= Take(queue);
                foreach (var entry in taken)
                    Fail(entry, e);
            }
            lock (_lock)
            {
                if (queue.Pending.Count == 0)
                {
                    queue.Dispatching = false;
                    _queues.Remove(key);
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Waits until the queue holds a full batch, or its first entry has waited <see cref="MaxWait"/> and no request
    /// expected from a shared model call is still on its way (for up to <see cref="CohortWait"/>).
    /// </summary>
    private async Task WaitForBatchAsync<TEntry>(string key, KeyQueue<TEntry> queue) where TEntry : BatchEntry
    {
        while (true)
        {
            TimeSpan left;
            lock (_lock)
            {
                if (queue.Pending.Count == 0)
                    return;
                if (queue.PendingImages() >= MaxBatchImages)
                    return;
                left = MaxWait - _time.GetElapsedTime(queue.Pending[0].EnqueuedAt);
                var expected = ExpectedWaitLeft(key);
                if (expected > left)
                    left = expected;
            }
            if (left <= TimeSpan.Zero)
                return;
            // Woken early by each arrival, to see whether the batch is full.
            using var timeout = new CancellationTokenSource(left, _time);
            try
            {
                await queue.Arrived.WaitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private IReadOnlyList<TEntry> Take<TEntry>(KeyQueue<TEntry> queue) where TEntry : BatchEntry
    {
        lock (_lock)
        {
            var batch = new List<TEntry>();
            int images = 0;
            while (queue.Pending.Count > 0)
            {
                int next = queue.Pending[0].Images;
                if (batch.Count > 0 && images + next > MaxBatchImages)
                    break;
                batch.Add(queue.Pending[0]);
                queue.Pending.RemoveAt(0);
                images += next;
            }
            return batch;
        }
    }

    /// <summary>
    /// Runs <paramref name="entries"/> as one call of <paramref name="run"/> (which returns one result per entry, in
    /// order) and hands each entry its result. Entries already cancelled are left out; the call's token is cancelled
    /// when every entry's is. When the call fails, a batch of several is split in halves and each half run again (an
    /// out-of-memory error, or one bad item); a single entry gets the failure. Returns how many entries got a result.
    /// </summary>
    public int Execute<TEntry, TResult>(IReadOnlyList<TEntry> entries, Func<IReadOnlyList<TEntry>, CancellationToken, IReadOnlyList<TResult>> run)
        where TEntry : BatchEntry<TResult>
    {
        var live = entries.Where(e => !e.Completion.Task.IsCompleted).ToArray();
        if (live.Length == 0)
            return 0;
        int images = live.Sum(e => e.Images);
        foreach (var entry in live)
            entry.OnBatched(images);
        using var allCancelled = new AllCancelled(live.Select(e => e.Token));
        IReadOnlyList<TResult> results;
        long started = _time.GetTimestamp();
        try
        {
            results = run(live, allCancelled.Token);
            if (results.Count != live.Length)
                throw new InvalidOperationException($"A batch of {live.Length} entries gave {results.Count} results.");
        }
        catch (Exception e) when (live.Length > 1 && !allCancelled.Token.IsCancellationRequested)
        {
            int half = live.Length / 2;
            if (StageOutOfMemoryException.IsOutOfMemory(e))
                LogSplitOutOfMemory(images, live.Length, half, live.Length - half);
            else
                LogSplitFailure(e, images, live.Length);
            return Execute(live[..half], run) + Execute(live[half..], run);
        }
        catch (Exception e)
        {
            foreach (var entry in live)
                Fail(entry, e);
            return 0;
        }
        LogBatch(live[0].Stage, images, live.Length, _time.GetElapsedTime(started).TotalSeconds);
        Interlocked.Increment(ref _calls);
        Interlocked.Add(ref _images, images);
        // Expected at the next stage before any of them can get there; one whose result nobody takes is not.
        bool cohort = live.Length > 1 && CohortWait > TimeSpan.Zero;
        if (cohort)
            Expect(live);
        int delivered = 0;
        for (int i = 0; i < live.Length; i++)
        {
            if (live[i].Completion.TrySetResult(results[i]))
                delivered++;
            else
            {
                live[i].Discard(results[i]);
                if (cohort && live[i].NextKey is { } next)
                    lock (_lock)
                        Arrive(next, live[i].CohortId);
            }
        }
        return delivered;
    }

    /// <summary>
    /// Expects each entry that names its next stage there, from now on; first forgets, under every key, those past
    /// <see cref="CohortWait"/> (a key nobody comes to again would otherwise keep them).
    /// </summary>
    private void Expect(IEnumerable<BatchEntry> entries)
    {
        long now = _time.GetTimestamp();
        lock (_lock)
        {
            foreach (string key in _expected.Keys.ToArray())
                ExpectedWaitLeft(key);
            foreach (var entry in entries)
            {
                if (entry.NextKey is not { } next || entry.CohortId is not { } id)
                    continue;
                if (!_expected.TryGetValue(next, out var list))
                    _expected[next] = list = [];
                list.Add((id, now));
            }
        }
    }

    /// <summary>The request has come (or will not): it is no longer expected under <paramref name="key"/>. Under the lock.</summary>
    private void Arrive(string key, string? cohortId)
    {
        if (cohortId is null || !_expected.TryGetValue(key, out var list))
            return;
        int index = list.FindIndex(e => e.CohortId == cohortId);
        if (index >= 0)
            list.RemoveAt(index);
        if (list.Count == 0)
            _expected.Remove(key);
    }

    /// <summary>How much longer a batch under <paramref name="key"/> waits for expected requests; forgets those past <see cref="CohortWait"/>. Under the lock.</summary>
    private TimeSpan ExpectedWaitLeft(string key)
    {
        if (!_expected.TryGetValue(key, out var list))
            return TimeSpan.Zero;
        list.RemoveAll(e => _time.GetElapsedTime(e.Since) >= CohortWait);
        if (list.Count == 0)
        {
            _expected.Remove(key);
            return TimeSpan.Zero;
        }
        return list.Max(e => CohortWait - _time.GetElapsedTime(e.Since));
    }

    private static void Fail<TResult>(BatchEntry<TResult> entry, Exception e)
    {
        if (e is OperationCanceledException && entry.Token.IsCancellationRequested)
            entry.Completion.TrySetCanceled(entry.Token);
        else
            entry.Completion.TrySetException(e);
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Stage}: a model call of {Images} image(s) from {Entries} request(s) took {Seconds:F3} s")]
    private partial void LogBatch(string stage, int images, int entries, double seconds);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A batch of {Images} image(s) from {Entries} requests ran out of memory; running it again as halves of {First} and {Second} requests")]
    private partial void LogSplitOutOfMemory(int images, int entries, int first, int second);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A batch of {Images} image(s) from {Entries} requests failed; running its halves again so the failure stays with the request that caused it")]
    private partial void LogSplitFailure(Exception exception, int images, int entries);

    private sealed class KeyQueue<TEntry>(Func<Func<IReadOnlyList<TEntry>>, Task> withModel) where TEntry : BatchEntry
    {
        public List<TEntry> Pending { get; } = [];
        public bool Dispatching { get; set; }
        public Func<Func<IReadOnlyList<TEntry>>, Task> WithModel { get; } = withModel;
        public SemaphoreSlim Arrived { get; } = new(0);

        public int PendingImages() => Pending.Sum(e => e.Images);
    }

    /// <summary>A token cancelled once every one of the given tokens is (never, if one of them cannot be).</summary>
    private sealed class AllCancelled : IDisposable
    {
        private readonly CancellationTokenSource _source = new();
        private readonly List<CancellationTokenRegistration> _registrations = [];
        private int _remaining;

        public AllCancelled(IEnumerable<CancellationToken> tokens)
        {
            var list = tokens.ToArray();
            _remaining = list.Length;
            if (list.Any(t => !t.CanBeCanceled))
                return;
            foreach (var token in list)
                _registrations.Add(token.Register(() =>
                {
                    if (Interlocked.Decrement(ref _remaining) == 0)
                        _source.Cancel();
                }));
        }

        public CancellationToken Token => _source.Token;

        public void Dispose()
        {
            foreach (var registration in _registrations)
                registration.Dispose();
            _source.Dispose();
        }
    }

    private sealed class Slot(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
                slots.Release();
        }
    }
}
