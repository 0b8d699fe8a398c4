using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Pipeline.Generation.Batching;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Tests.Generation;

/// <summary>The batcher on its own, with a fake model call: which entries share a call, and what each gets back.</summary>
public sealed class StageBatcherTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private sealed class Entry(string name, int images = 1, CancellationToken token = default, string? cohort = null, string? next = null)
        : BatchEntry<string>(images, token)
    {
        public string Name { get; } = name;
        public override string? CohortId { get; } = cohort;
        public override string? NextKey { get; } = next;
        public int WaitingReports { get; private set; }
        public int? BatchImages { get; private set; }

        public override void OnWaiting() => WaitingReports++;

        public override void OnBatched(int batchImages) => BatchImages = batchImages;
    }

    /// <summary>A fake model: one caller at a time, like ModelHost; records each call's entries.</summary>
    private sealed class FakeModel
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        public List<string[]> Calls { get; } = [];
        public Func<IReadOnlyList<Entry>, CancellationToken, IReadOnlyList<string>> Run { get; set; } = (entries, _) => entries.Select(e => "out:" + e.Name).ToArray();
        public TaskCompletionSource? Hold { get; set; }

        public Func<Func<IReadOnlyList<Entry>>, Task> For(StageBatcher batcher) => async take =>
        {
            await _gate.WaitAsync();
            try
            {
                if (Hold is { } hold)
                    await hold.Task;
                batcher.Execute<Entry, string>(take(), (entries, token) =>
                {
                    lock (Calls)
                        Calls.Add(entries.Select(e => e.Name).ToArray());
                    return Run(entries, token);
                });
            }
            finally
            {
                _gate.Release();
            }
        };
    }

    private static StageBatcher Batcher(int maxImages, TimeSpan maxWait, TimeProvider? time = null, TimeSpan? cohortWait = null) =>
        new(Options.Create(new BatchingOptions { MaxBatchImages = maxImages, MaxWait = maxWait, CohortWait = cohortWait ?? TimeSpan.Zero }),
            Options.Create(new ModelOptions()), NullLogger<StageBatcher>.Instance, time);

    /// <summary>Runs <paramref name="generations"/> through key "c" as one call (the model held until all are queued); they go to "b" next.</summary>
    private static async Task RunOneCallAsync(StageBatcher batcher, params string[] generations)
    {
        var model = new FakeModel { Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var runs = generations.Select(g => batcher.RunAsync<Entry, string>("c", new Entry(g, cohort: g, next: "b"), model.For(batcher))).ToArray();
        model.Hold.SetResult();
        await Task.WhenAll(runs);
        Assert.Equal(generations, Assert.Single(model.Calls));
    }

    [Fact]
    public async Task RequestsThatSharedACallMoveOnTogetherWithoutAnyMaximumWait()
    {
        var time = new ManualTime(); // never advanced: nothing here may depend on a timeout
        var batcher = Batcher(8, TimeSpan.Zero, time, cohortWait: TimeSpan.FromSeconds(5));
        await RunOneCallAsync(batcher, "g0", "g1", "g2");

        var next = new FakeModel();
        var first = batcher.RunAsync<Entry, string>("b", new Entry("g0", cohort: "g0"), next.For(batcher));
        await Task.Delay(200, Token);
        Assert.False(first.IsCompleted, "the first of the batch ran alone at the next stage while its batch-mates were on their way");
        var others = new[] { "g2", "g1" }.Select(g => batcher.RunAsync<Entry, string>("b", new Entry(g, cohort: g), next.For(batcher))).ToArray();

        Assert.Equal("out:g0", await first.WaitAsync(TimeSpan.FromSeconds(30), Token));
        Assert.Equal(["out:g2", "out:g1"], await Task.WhenAll(others));
        Assert.Equal(["g0", "g2", "g1"], Assert.Single(next.Calls));
        Assert.Equal(TimeSpan.Zero, time.Now);
    }

    [Fact]
    public async Task ABatchMateThatNeverComesHoldsTheOthersNoLongerThanTheCohortWait()
    {
        var time = new ManualTime();
        var batcher = Batcher(8, TimeSpan.Zero, time, cohortWait: TimeSpan.FromMilliseconds(100));
        await RunOneCallAsync(batcher, "g0", "g1");

        var next = new FakeModel();
        var started = new List<TimeSpan>();
        next.Run = (entries, _) =>
        {
            lock (started)
                started.Add(time.Now);
            return entries.Select(e => "out:" + e.Name).ToArray();
        };
        var arrived = batcher.RunAsync<Entry, string>("b", new Entry("g0", cohort: "g0"), next.For(batcher));
        await Task.Delay(200, Token);
        Assert.False(arrived.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(60));
        await Task.Delay(200, Token);
        Assert.False(arrived.IsCompleted, "the wait for the batch-mate ended before the cohort wait");
        time.Advance(TimeSpan.FromMilliseconds(40)); // g1 failed, was cancelled or went elsewhere: g0 goes on without it

        Assert.Equal("out:g0", await arrived.WaitAsync(TimeSpan.FromSeconds(30), Token));
        Assert.Equal([TimeSpan.FromMilliseconds(100)], started);
        // Expected no more: a later request of the same generation or a stranger runs at once (no maximum wait on this batcher).
        Assert.Equal("out:late", await batcher.RunAsync<Entry, string>("b", new Entry("late", cohort: "g1"), next.For(batcher)).WaitAsync(TimeSpan.FromSeconds(30), Token));
    }

    [Fact]
    public async Task ExpectationsAtAStageNobodyComesToAreForgotten()
    {
        var time = new ManualTime();
        var batcher = Batcher(8, TimeSpan.Zero, time, cohortWait: TimeSpan.FromMilliseconds(100));
        await RunOneCallAsync(batcher, "g0", "g1"); // expected at "b", where nobody ever comes
        Assert.Equal(2, batcher.ExpectedRequests);
        time.Advance(TimeSpan.FromMilliseconds(100));

        await RunOneCallAsync(batcher, "g2", "g3");

        Assert.Equal(2, batcher.ExpectedRequests); // only the new pair: the stale one is gone
    }

    [Fact]
    public async Task ARequestThatRanAloneIsNotWaitedFor()
    {
        var time = new ManualTime();
        var batcher = Batcher(8, TimeSpan.Zero, time, cohortWait: TimeSpan.FromSeconds(5));
        await RunOneCallAsync(batcher, "g0");
        var next = new FakeModel();
        Assert.Equal("out:g0", await batcher.RunAsync<Entry, string>("b", new Entry("g0", cohort: "g0"), next.For(batcher)).WaitAsync(TimeSpan.FromSeconds(30), Token));
        // And nobody else is expected at a key after a lone request's call.
        Assert.Equal("out:x", await batcher.RunAsync<Entry, string>("b", new Entry("x", cohort: "x"), next.For(batcher)).WaitAsync(TimeSpan.FromSeconds(30), Token));
    }

    [Fact]
    public async Task EntriesQueuedWhileTheModelIsBusyShareOneCallAndEachGetsItsOwnResult()
    {
        var batcher = Batcher(8, TimeSpan.Zero);
        var model = new FakeModel { Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously) };
        var entries = Enumerable.Range(0, 5).Select(i => new Entry("e" + i, images: i == 2 ? 2 : 1)).ToArray();
        var first = batcher.RunAsync<Entry, string>("k", entries[0], model.For(batcher));
        var rest = entries.Skip(1).Select(e => batcher.RunAsync<Entry, string>("k", e, model.For(batcher))).ToArray();
        model.Hold.SetResult();

        Assert.Equal("out:e0", await first);
        Assert.Equal(["out:e1", "out:e2", "out:e3", "out:e4"], await Task.WhenAll(rest));
        // The first call may take e0 alone or everything; every entry ran exactly once, in arrival order, and at least two shared a call.
        Assert.Equal(entries.Select(e => e.Name), model.Calls.SelectMany(c => c));
        Assert.Contains(model.Calls, call => call.Length > 1);
        Assert.All(entries, e => Assert.True(e.WaitingReports == 1 && e.BatchImages >= e.Images));
    }

    [Fact]
    public async Task ABatchHoldsAtMostTheMaximumImagesAndKeysNeverMix()
    {
        var batcher = Batcher(3, TimeSpan.FromSeconds(5));
        var model = new FakeModel();
        var a = Enumerable.Range(0, 6).Select(i => batcher.RunAsync<Entry, string>("a", new Entry("a" + i), model.For(batcher))).ToArray();
        var b = batcher.RunAsync<Entry, string>("b", new Entry("b0", images: 5), model.For(batcher));
        await Task.WhenAll(a);
        Assert.Equal("out:b0", await b); // larger than the maximum: it runs alone
        Assert.All(model.Calls, call => Assert.True(call.All(n => n[0] == call[0][0]), "a call mixed keys"));
        Assert.All(model.Calls.Where(c => c[0][0] == 'a'), call => Assert.Equal(3, call.Length)); // full batches start without waiting 5 s
        Assert.Contains(model.Calls, c => c.SequenceEqual(["b0"]));
    }

    [Fact]
    public async Task ALoneRequestWaitsForOthersNoLongerThanTheMaximumWait()
    {
        var time = new ManualTime();
        var batcher = Batcher(4, TimeSpan.FromMilliseconds(40), time);
        var model = new FakeModel();
        var started = new List<TimeSpan>();
        model.Run = (entries, _) =>
        {
            lock (started)
                started.Add(time.Now);
            return entries.Select(e => "out:" + e.Name).ToArray();
        };

        var lone = batcher.RunAsync<Entry, string>("k", new Entry("lone"), model.For(batcher));
        await Task.Delay(200, Token);
        Assert.False(lone.IsCompleted, "the request did not wait for others to join");
        time.Advance(TimeSpan.FromMilliseconds(25));
        var second = batcher.RunAsync<Entry, string>("k", new Entry("second"), model.For(batcher));
        await Task.Delay(200, Token);
        Assert.False(lone.IsCompleted, "the batch started before its first request's maximum wait");
        time.Advance(TimeSpan.FromMilliseconds(15));

        Assert.Equal("out:lone", await lone.WaitAsync(TimeSpan.FromSeconds(30), Token));
        Assert.Equal("out:second", await second);
        Assert.Equal(["lone", "second"], Assert.Single(model.Calls));
        Assert.Equal([TimeSpan.FromMilliseconds(40)], started); // the first request's maximum wait, not the second's
    }

    [Fact]
    public async Task AFailingItemFailsOnlyItsOwnRequest()
    {
        var batcher = Batcher(8, TimeSpan.Zero);
        var model = new FakeModel
        {
            Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously),
            Run = (entries, _) => entries.Any(e => e.Name == "bad")
                ? throw new InvalidDataException("a bad blob")
                : entries.Select(e => "out:" + e.Name).ToArray(),
        };
        string[] names = ["x0", "x1", "bad", "x3", "x4", "x5"];
        var runs = names.Select(n => batcher.RunAsync<Entry, string>("k", new Entry(n), model.For(batcher))).ToArray();
        model.Hold.SetResult();

        for (int i = 0; i < names.Length; i++)
        {
            if (names[i] == "bad")
                Assert.Equal("a bad blob", (await Assert.ThrowsAsync<InvalidDataException>(() => runs[i])).Message);
            else
                Assert.Equal("out:" + names[i], await runs[i]);
        }
        Assert.Equal(["bad"], model.Calls.Last(c => c.Contains("bad")));
        Assert.Equal(6, model.Calls[0].Length); // they did share a call first
    }

    [Fact]
    public async Task ABatchOverTheMemoryLimitIsSplitInHalvesUntilItFits()
    {
        // A fake allocator that holds three images: a larger call fails the way LibTorch's CPU allocator does.
        const int limit = 3;
        var batcher = Batcher(8, TimeSpan.Zero);
        var model = new FakeModel
        {
            Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously),
            Run = (entries, _) => entries.Sum(e => e.Images) > limit
                ? StageOutOfMemoryException.Guard<string[]>("Stage B", 128, 128, entries.Sum(e => e.Images), TorchSharp.torch.CPU,
                    () => throw new FakeAllocatorException("DefaultCPUAllocator: not enough memory: you tried to allocate 4294967296 bytes."))
                : entries.Select(e => "out:" + e.Name).ToArray(),
        };
        var entries = Enumerable.Range(0, 8).Select(i => new Entry("e" + i)).ToArray();
        var runs = entries.Select(e => batcher.RunAsync<Entry, string>("k", e, model.For(batcher))).ToArray();
        model.Hold.SetResult();

        Assert.Equal(entries.Select(e => "out:" + e.Name), await Task.WhenAll(runs));
        Assert.Equal(8, model.Calls[0].Length);                       // tried whole first
        Assert.Equal([4, 4], model.Calls.Skip(1).Where(c => c.Length > limit).Select(c => c.Length)); // then its halves
        var fitted = model.Calls.Where(c => c.Length <= limit).SelectMany(c => c).ToArray();
        Assert.Equal(entries.Select(e => e.Name), fitted);              // and every entry once, in a call that fit
    }

    [Fact]
    public async Task AnOutOfMemoryOfASingleRequestFailsIt()
    {
        var batcher = Batcher(8, TimeSpan.Zero);
        var model = new FakeModel { Run = (_, _) => throw new StageOutOfMemoryException("Stage C", 1024, 1024, 4, "cpu", new OutOfMemoryException()) };
        await Assert.ThrowsAsync<StageOutOfMemoryException>(() => batcher.RunAsync<Entry, string>("k", new Entry("big", images: 4), model.For(batcher)));
        Assert.Single(model.Calls);
    }

    [Fact]
    public async Task ACancelledRequestLeavesItsBatchAndTheOthersGoOn()
    {
        var batcher = Batcher(8, TimeSpan.Zero);
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var finish = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        CancellationToken callToken = default;
        var model = new FakeModel
        {
            Hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously),
            Run = (entries, token) =>
            {
                callToken = token;
                running.TrySetResult();
                finish.Task.Wait(Token);
                return entries.Select(e => "out:" + e.Name).ToArray();
            },
        };
        using var beforeStart = new CancellationTokenSource();
        using var whileRunning = new CancellationTokenSource();
        var head = batcher.RunAsync<Entry, string>("k", new Entry("head"), model.For(batcher));
        var leaving = batcher.RunAsync<Entry, string>("k", new Entry("leaves-early", token: beforeStart.Token), model.For(batcher));
        var stopped = batcher.RunAsync<Entry, string>("k", new Entry("stopped", token: whileRunning.Token), model.For(batcher));
        var stays = batcher.RunAsync<Entry, string>("k", new Entry("stays"), model.For(batcher));
        await beforeStart.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => leaving);
        model.Hold.SetResult();

        await running.Task.WaitAsync(TimeSpan.FromSeconds(30), Token);
        Assert.Equal(["head", "stopped", "stays"], Assert.Single(model.Calls));
        await whileRunning.CancelAsync();
        // The cancelled request ends at once, while its batch still runs; the batch goes on for the others.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stopped.WaitAsync(TimeSpan.FromSeconds(30), Token));
        Assert.False(stays.IsCompleted || head.IsCompleted);
        Assert.False(callToken.IsCancellationRequested);
        finish.SetResult();
        Assert.Equal("out:head", await head);
        Assert.Equal("out:stays", await stays);
    }

    [Fact]
    public async Task ABatchWhoseRequestsAreAllCancelledIsStopped()
    {
        var batcher = Batcher(8, TimeSpan.Zero);
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var model = new FakeModel
        {
            Run = (entries, token) =>
            {
                running.TrySetResult();
                token.WaitHandle.WaitOne(TimeSpan.FromSeconds(30));
                token.ThrowIfCancellationRequested();
                throw new InvalidOperationException("the call's token was never cancelled");
            },
        };
        using var one = new CancellationTokenSource();
        using var two = new CancellationTokenSource();
        var first = batcher.RunAsync<Entry, string>("k", new Entry("one", token: one.Token), model.For(batcher));
        await running.Task.WaitAsync(TimeSpan.FromSeconds(30), Token);
        await one.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        // The next request runs after the stopped call: the model is free again.
        model.Run = (entries, _) => entries.Select(e => "out:" + e.Name).ToArray();
        Assert.Equal("out:two", await batcher.RunAsync<Entry, string>("k", new Entry("two", token: two.Token), model.For(batcher)).WaitAsync(TimeSpan.FromSeconds(30), Token));
    }

    [Fact]
    public void InvalidSettingsAreNamed()
    {
        var errors = new BatchingOptions { MaxBatchImages = 0, MaxWait = TimeSpan.FromMinutes(1), CohortWait = TimeSpan.FromMilliseconds(-1), MaxConcurrentStageActivities = 0 }.Validate();
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.Contains("Wuerstchen:Batching:CohortWait"));
        Assert.Contains(errors, e => e.Contains("Wuerstchen:Batching:MaxBatchImages"));
        Assert.Contains(errors, e => e.Contains("Wuerstchen:Batching:MaxWait"));
        Assert.Contains(errors, e => e.Contains("Wuerstchen:Batching:MaxConcurrentStageActivities"));
        Assert.Empty(new BatchingOptions().Validate());
    }

    [Fact]
    public void TheCpuDefaultIsNoWaiting()
    {
        var cpu = new ModelOptions { Device = "cpu" };
        var options = new BatchingOptions();
        Assert.Equal(TimeSpan.Zero, options.EffectiveMaxWait(cpu));
        Assert.Equal(DeviceProfile.Cpu.BulkBatchSize, options.EffectiveMaxBatchImages(cpu));
        Assert.Equal(2 * DeviceProfile.Cpu.BulkBatchSize, options.EffectiveMaxConcurrentStageActivities(cpu));
        Assert.True(DeviceProfile.ForCardMemory(141L << 30, "H200").BatchMaxWait > TimeSpan.Zero);
        // Batch-mates still wait for each other at the next stage (briefly), unless batching is off.
        Assert.Equal(BatchingOptions.DefaultCohortWait, options.EffectiveCohortWait(cpu));
        Assert.Equal(TimeSpan.Zero, new BatchingOptions { MaxBatchImages = 1 }.EffectiveCohortWait(cpu));
    }

    [Fact]
    public async Task TheWorkerTakesNoMoreStageActivitiesThanItsSlots()
    {
        var batcher = new StageBatcher(Options.Create(new BatchingOptions { MaxConcurrentStageActivities = 2 }), Options.Create(new ModelOptions()),
            NullLogger<StageBatcher>.Instance);
        using var a = await batcher.EnterActivityAsync(Token);
        var b = await batcher.EnterActivityAsync(Token);
        var c = batcher.EnterActivityAsync(Token);
        await Task.Delay(100, Token);
        Assert.False(c.IsCompleted);
        b.Dispose();
        (await c.WaitAsync(TimeSpan.FromSeconds(30), Token)).Dispose();
    }

    private sealed class FakeAllocatorException(string message) : Exception(message);

    /// <summary>A clock that moves only when told to, with timers that fire as it passes them.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private readonly object _lock = new();
        private readonly List<Timer> _timers = [];
        private long _ticks;

        public TimeSpan Now => TimeSpan.FromTicks(Interlocked.Read(ref _ticks));

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan by)
        {
            List<Timer> due;
            lock (_lock)
            {
                _ticks += by.Ticks;
                due = _timers.Where(t => t.Due <= _ticks).ToList();
                _timers.RemoveAll(due.Contains);
            }
            foreach (var timer in due)
                timer.Fire();
        }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = new Timer(this, callback, state);
            timer.Change(dueTime, period);
            return timer;
        }

        private sealed class Timer(ManualTime owner, TimerCallback callback, object? state) : ITimer
        {
            public long Due { get; private set; }

            public void Fire() => callback(state);

            public bool Change(TimeSpan dueTime, TimeSpan period)
            {
                lock (owner._lock)
                {
                    owner._timers.Remove(this);
                    if (dueTime == Timeout.InfiniteTimeSpan)
                        return true;
                    Due = owner._ticks + dueTime.Ticks;
                    owner._timers.Add(this);
                }
                return true;
            }

            public void Dispose()
            {
                lock (owner._lock)
                    owner._timers.Remove(this);
            }

            public ValueTask DisposeAsync()
            {
                Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }
}
