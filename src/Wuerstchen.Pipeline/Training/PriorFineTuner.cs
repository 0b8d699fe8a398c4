using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using TorchSharp;
using Wuerstchen.Models.Blocks;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageC;
using Wuerstchen.Models.Training;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// One point of the loss log: the step's mean training loss, its learning rate and its gradient norm before clipping;
/// at the end of each chunk (and at step 0, for the starting weights) also the evaluation loss, the plain MSE of the
/// raw weights on a fixed batch (the first items, fixed noise levels and noise), which, unlike the training loss,
/// does not jump with each step's random t.
/// </summary>
public sealed record LossPoint(int Step, double? Loss, double? LearningRate, double? GradNorm, double? EvalLoss = null);

/// <summary>What a training chunk did and where the run stands.</summary>
public sealed record ChunkOutcome(int Step, int TotalSteps, bool Done, int StepsTaken, double? Loss, double? LearningRate,
    string? Checkpoint, int? ResumedFrom, IReadOnlyList<SkippedCheckpoint> Skipped, double? EvalLoss = null);

/// <summary>Sees every optimiser step as it completes (tests use it to stop a chunk part-way, as a crash would).</summary>
public interface ITrainingStepObserver
{
    void AfterStep(string runId, int step, CancellationToken cancellationToken);
}

/// <summary>The start that was training a run no longer holds it: the run was cancelled or started again.</summary>
public sealed class FineTuneCancelledException(string runId) : OperationCanceledException($"Fine-tune run '{runId}' was cancelled or started again; this start no longer trains it.");

/// <summary>
/// The training loop: one call trains up to <see cref="TrainingRecipe.StepsPerChunk"/> optimiser steps from the run's
/// newest good checkpoint (or from the base prior) and ends with a new checkpoint. Everything random — the data order
/// (a seeded permutation per epoch), t, ε, caption dropout and the prior's dropout masks — comes from three seeded
/// generators whose states are checkpointed, so a chunk that dies part-way and is run again gives, on the CPU,
/// bit for bit the weights of a run that never stopped.
/// </summary>
public sealed partial class PriorFineTuner(IBlobStore store, ModelLocator locator, ModelHost models, CheckpointStore checkpoints,
    IOptions<TrainingOptions> options, IEnumerable<ITrainingStepObserver> observers, ILogger<PriorFineTuner> logger)
{
    private const ulong StreamSpacing = 0x9E3779B97F4A7C15;
    private const long EntryCacheBytes = 256L << 20;
    private const int EvaluationItems = 8;
    private static readonly float[] EvaluationLevels = [0.2f, 0.4f, 0.6f, 0.8f];

    private readonly ITrainingStepObserver[] _observers = observers.ToArray();

    /// <param name="startId">The start this chunk belongs to (see <see cref="RunLease"/>); null trains without checking.</param>
    public async Task<ChunkOutcome> TrainChunkAsync(FineTuneRun run, string? startId, CancellationToken cancellationToken)
    {
        await EnsureLeaseAsync(run.RunId, startId, cancellationToken).ConfigureAwait(false);
        var recipe = run.Recipe;
        var prepared = await BlobJson.ReadAsync<PreparedDataset>(store, TrainingBlobs.Prepared(run.RunId), cancellationToken).ConfigureAwait(false);
        if (prepared.Items.Count == 0)
            throw new InvalidOperationException($"Run '{run.RunId}' has no trainable items; every dataset item was skipped (see {TrainingBlobs.DatasetReport(run.RunId)}).");

        var lookup = await checkpoints.LoadLatestAsync(run.RunId, cancellationToken).ConfigureAwait(false);
        using var checkpoint = lookup.Checkpoint;
        if (checkpoint is not null)
        {
            var saved = checkpoint.State;
            if (saved.DatasetVersion != prepared.DatasetVersion || saved.ItemCount != prepared.Items.Count)
                throw new InvalidOperationException($"Run '{run.RunId}' was trained on dataset version {saved.DatasetVersion[..12]}…, which has changed to {prepared.DatasetVersion[..12]}…; start a new run.");
            if (saved.RecipeHash != recipe.Hash())
                throw new InvalidOperationException($"Run '{run.RunId}' was trained with another recipe ({saved.RecipeHash}, now {recipe.Hash()}); start a new run.");
        }
        int start = checkpoint?.State.Step ?? 0;
        if (start >= recipe.TotalSteps)
            return new ChunkOutcome(start, recipe.TotalSteps, true, 0, checkpoint?.State.LastLoss, checkpoint?.State.LearningRate, checkpoint?.Prefix, start, lookup.Skipped);
        if (checkpoint is not null)
            LogResuming(run.RunId, start, lookup.Skipped.Count);
        int? resumedFrom = checkpoint is null ? null : start;
        var publisher = new TrainingProgressPublisher(store, run.RunId, start, options.Value, logger);
        TrainingProgress Progress(int step, double? loss, double? rate, double? stepsPerSecond) => new(
            startId ?? "", TrainingProgress.Training, step, recipe.TotalSteps, start, loss, rate, stepsPerSecond,
            stepsPerSecond is > 0 ? (recipe.TotalSteps - step) / stepsPerSecond : null, resumedFrom, lookup.Skipped, null, null, DateTimeOffset.UtcNow);
        publisher.Report(Progress(start, checkpoint?.State.LastLoss, checkpoint?.State.LearningRate, null));

        try
        {
            var device = models.Inference.Device;
            var repository = ModelRepository.Open(locator.Resolve(recipe.BasePrior));
            var scheduler = DdpmWuerstchenScheduler.FromComponent(repository.Component("scheduler"));
            using var prior = WuerstchenPrior.FromComponent(repository.Component("prior"), ScalarType.Float32);
            if (checkpoint is not null)
                Weights.CopyInto(prior, checkpoint.Raw, "raw weights");
            prior.to(device);
            if (recipe.Dropout)
                prior.train();
            else
                prior.eval();

            var computeType = recipe.Precision == "bfloat16" ? ScalarType.BFloat16 : ScalarType.Float32;
            using var step = new PriorTrainingStep(prior, scheduler, recipe.Optimizer, computeType);
            using var ema = new ExponentialMovingAverage(prior.named_parameters().Select(p => (p.name, p.parameter)), recipe.Ema);
            using var noise = new SeededNoise(recipe.Seed);
            using var data = new SeededNoise(unchecked(recipe.Seed + StreamSpacing));
            using var dropout = new SeededNoise(unchecked(recipe.Seed + 2 * StreamSpacing));
            var order = new DataOrder(prepared.Items.Count);
            double? lastLoss = null;
            double lastRate = 0;
            if (checkpoint is not null)
            {
                step.LoadOptimizerState(checkpoint.Optimizer);
                ema.Load(checkpoint.Ema, checkpoint.State.EmaUpdates);
                noise.SetState(Convert.FromBase64String(checkpoint.State.NoiseRng));
                data.SetState(Convert.FromBase64String(checkpoint.State.DataRng));
                dropout.SetState(Convert.FromBase64String(checkpoint.State.DropoutRng));
                order = new DataOrder(prepared.Items.Count, checkpoint.State.Epoch, checkpoint.State.Permutation.ToArray(), checkpoint.State.Cursor);
                lastLoss = checkpoint.State.LastLoss;
                lastRate = checkpoint.State.LearningRate;
            }

            var entries = new EntryCache(store, prepared.EncoderKey);
            using var emptyText = await entries.ReadEmptyCaptionAsync(cancellationToken).ConfigureAwait(false);
            var evaluationBatch = await entries.ReadAsync(prepared.Items.Take(EvaluationItems).Select(i => i.Key).ToArray(), cancellationToken).ConfigureAwait(false);
            int end = Math.Min(recipe.TotalSteps, start + recipe.StepsPerChunk);
            var points = new List<LossPoint>();
            if (start == 0)
            {
                points.Add(new LossPoint(0, null, null, null, Evaluate(prior, scheduler, evaluationBatch, device)));
                publisher.Add(points[^1]);
            }
            int current = start;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (current < end)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await EnsureLeaseAsync(run.RunId, startId, cancellationToken).ConfigureAwait(false);

                // The data first (reads are asynchronous), then the step itself, synchronously inside one dispose scope.
                var microBatches = new List<IReadOnlyList<byte[]>>();
                for (int micro = 0; micro < recipe.GradientAccumulation; micro++)
                {
                    var keys = Enumerable.Range(0, recipe.BatchSize).Select(_ => prepared.Items[order.Next(data)].Key).ToArray();
                    microBatches.Add(await entries.ReadAsync(keys, cancellationToken).ConfigureAwait(false));
                }
                double rate = recipe.LearningRateAt(current);
                var (loss, norm) = TakeStep(recipe, step, scheduler, microBatches, emptyText, noise, dropout, rate, device);
                current++;
                ema.AfterStep(current);
                points.Add(new LossPoint(current, loss, rate, norm));
                publisher.Add(points[^1]);
                publisher.Report(Progress(current, loss, rate, (current - start) / clock.Elapsed.TotalSeconds));
                lastLoss = loss;
                lastRate = rate;
                foreach (var observer in _observers)
                    observer.AfterStep(run.RunId, current, cancellationToken);
                if (current % options.Value.CollectGarbageEvery == 0)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                }
            }

            double evalLoss = Evaluate(prior, scheduler, evaluationBatch, device);
            points[^1] = points[^1] with { EvalLoss = evalLoss };
            var state = new TrainingState
            {
                RunId = run.RunId,
                Step = current,
                SchedulePosition = current,
                LearningRate = lastRate,
                Epoch = order.Epoch,
                Cursor = order.Cursor,
                Permutation = order.Permutation,
                NoiseRng = Convert.ToBase64String(noise.GetState()),
                DataRng = Convert.ToBase64String(data.GetState()),
                DropoutRng = Convert.ToBase64String(dropout.GetState()),
                EmaUpdates = ema.Updates,
                DatasetVersion = prepared.DatasetVersion,
                ItemCount = prepared.Items.Count,
                RecipeHash = recipe.Hash(),
                Recipe = recipe,
                LastLoss = lastLoss,
            };
            await EnsureLeaseAsync(run.RunId, startId, cancellationToken).ConfigureAwait(false);
            var optimizerState = step.SaveOptimizerState();
            string prefix;
            try
            {
                prefix = await checkpoints.SaveAsync(run.RunId, current, prior.state_dict(), ema.Averages, optimizerState, state, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                foreach (var tensor in optimizerState.Values)
                    tensor.Dispose();
            }
            await publisher.DisposeAsync().ConfigureAwait(false); // its last write lands before the chunk's own loss log write
            await LossLog.AppendAsync(store, run.RunId, start, points, cancellationToken).ConfigureAwait(false);
            await checkpoints.PruneAsync(run.RunId, options.Value.CheckpointsToKeep, cancellationToken).ConfigureAwait(false);
            LogChunk(run.RunId, start, current, lastLoss ?? double.NaN, evalLoss);
            return new ChunkOutcome(current, recipe.TotalSteps, current >= recipe.TotalSteps, current - start, lastLoss, lastRate, prefix,
                checkpoint is null ? null : start, lookup.Skipped, evalLoss);
        }
        finally
        {
            await publisher.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The plain MSE of the prior (dropout off) on a fixed batch: every evaluation item at each of four noise levels,
    /// with noise from its own fixed seed, so the training streams are untouched and values compare across steps.
    /// </summary>
    private static double Evaluate(WuerstchenPrior prior, DdpmWuerstchenScheduler scheduler, IReadOnlyList<byte[]> batch, Device device)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        bool training = prior.training;
        prior.eval();
        try
        {
            var read = batch.Select((content, i) => DatasetPreparer.ReadEntry(content, $"evaluation item {i}")).ToArray();
            int levels = EvaluationLevels.Length;
            var latents = stack(read.Select(r => r.Latents)).repeat_interleave(levels, dim: 0).to(device);
            var text = stack(read.Select(r => r.Text)).repeat_interleave(levels, dim: 0).to(device);
            var t = tensor(EvaluationLevels).repeat(read.Length).to(device);
            using var noise = new SeededNoise(0);
            var epsilon = noise.Randn(latents.shape, ScalarType.Float32, device);
            var prediction = prior.forward(scheduler.AddNoise(latents, epsilon, t), t, text);
            return (prediction.to(float32) - epsilon).pow(2).mean().item<float>();
        }
        finally
        {
            if (training)
                prior.train();
        }
    }

    private async Task EnsureLeaseAsync(string runId, string? startId, CancellationToken cancellationToken)
    {
        if (startId is not null && (await FineTuneRuns.ReadLeaseAsync(store, runId, cancellationToken).ConfigureAwait(false))?.StartId != startId)
            throw new FineTuneCancelledException(runId);
    }

    /// <summary>One optimiser step over the micro-batches: mean loss and gradient norm before clipping.</summary>
    private static (double Loss, double GradNorm) TakeStep(TrainingRecipe recipe, PriorTrainingStep step, DdpmWuerstchenScheduler scheduler,
        List<IReadOnlyList<byte[]>> microBatches, Tensor emptyText, SeededNoise noise, SeededNoise dropout, double rate, Device device)
    {
        using var scope = NewDisposeScope();
        step.LearningRate = rate;
        double total = 0;
        foreach (var batch in microBatches)
        {
            var read = batch.Select((content, i) => DatasetPreparer.ReadEntry(content, $"batch item {i}")).ToArray();
            var latents = stack(read.Select(r => r.Latents)).to(device);
            var text = stack(read.Select(r => r.Text));
            long size = latents.shape[0];
            if (recipe.CaptionDropout > 0 && noise.Rand([1]).item<float>() < recipe.CaptionDropout)
                text = emptyText.unsqueeze(0).expand(size, -1, -1);
            text = text.to(device);
            var uniform = noise.Rand([size]);
            var t = recipe.NoiseLevels == TrainingRecipe.ShiftedNoise ? ((1 - uniform) * 1.08 + 0.001).clamp(0.001, 1.0) : uniform;
            t = t.to(device);
            var epsilon = noise.Randn(latents.shape, ScalarType.Float32, device);
            var weight = recipe.LossWeighting == TrainingRecipe.P2Weighting ? 1 - scheduler.AlphaCumprod(t) : null;
            // On the CPU the masks come from the checkpointed stream itself; on an accelerator (where drawing every
            // mask on the CPU would cost more than the step) from a device generator seeded from that stream.
            using var deviceGenerator = device.type == DeviceType.CPU ? null
                : new Generator((ulong)(dropout.Rand([1], ScalarType.Float64).item<double>() * (1L << 53)), device);
            using (SeededDropout.Use(deviceGenerator ?? dropout.Generator))
                total += step.AccumulateGradients(latents, text, epsilon, t, weight, 1.0 / microBatches.Count);
        }
        double norm = step.ApplyGradients();
        return (total / microBatches.Count, norm);
    }

    /// <summary>The order items are read in: one seeded permutation per epoch, drawn when the previous one runs out.</summary>
    private sealed class DataOrder(int count, int epoch = 0, int[]? permutation = null, int cursor = 0)
    {
        public int Epoch { get; private set; } = epoch;
        public int[] Permutation { get; private set; } = permutation ?? [];
        public int Cursor { get; private set; } = cursor;

        public int Next(SeededNoise stream)
        {
            if (Cursor >= Permutation.Length)
            {
                using var drawn = randperm(count, ScalarType.Int64, generator: stream.Generator);
                Permutation = drawn.data<long>().Select(i => (int)i).ToArray();
                Cursor = 0;
                Epoch++;
            }
            return Permutation[Cursor++];
        }
    }

    /// <summary>Cache entries as bytes, kept in memory up to a budget so a small dataset is read from the store once per chunk.</summary>
    private sealed class EntryCache(IBlobStore store, string encoderKey)
    {
        private readonly Dictionary<string, byte[]> _resident = new(StringComparer.Ordinal);
        private long _bytes;

        public async Task<IReadOnlyList<byte[]>> ReadAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
        {
            var result = new byte[keys.Count][];
            for (int i = 0; i < keys.Count; i++)
            {
                if (!_resident.TryGetValue(keys[i], out var content))
                {
                    content = await ReadBytesAsync(TrainingBlobs.CacheEntry(encoderKey, keys[i]), cancellationToken).ConfigureAwait(false);
                    if (_bytes + content.Length <= EntryCacheBytes)
                    {
                        _resident[keys[i]] = content;
                        _bytes += content.Length;
                    }
                }
                result[i] = content;
            }
            return result;
        }

        public async Task<Tensor> ReadEmptyCaptionAsync(CancellationToken cancellationToken)
        {
            string name = TrainingBlobs.EmptyCaption(encoderKey);
            var (tensors, _) = Wuerstchen.Models.IO.SafetensorsFile.ReadAll(new MemoryStream(await ReadBytesAsync(name, cancellationToken).ConfigureAwait(false)), name);
            return tensors.TryGetValue(DatasetPreparer.TextTensor, out var text) ? text : throw new InvalidDataException($"'{name}' holds no text embedding.");
        }

        private async Task<byte[]> ReadBytesAsync(string name, CancellationToken cancellationToken)
        {
            await using var stream = await store.OpenReadAsync(name, cancellationToken).ConfigureAwait(false);
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId}: resuming at step {Step} (skipped {Skipped} newer checkpoint(s))")]
    private partial void LogResuming(string runId, int step, int skipped);

    [LoggerMessage(Level = LogLevel.Information, Message = "Run {RunId}: trained steps {From}…{To}, loss {Loss:F5}, evaluation loss {EvalLoss:F5}")]
    private partial void LogChunk(string runId, int from, int to, double loss, double evalLoss);
}

/// <summary>Strict copies of named tensors into a module's parameters: every missing, extra or misshapen name is reported.</summary>
public static class Weights
{
    public static void CopyInto(nn.Module module, IReadOnlyDictionary<string, Tensor> weights, string what)
    {
        var destination = module.state_dict();
        var problems = destination.Keys.Where(k => !weights.ContainsKey(k)).Select(k => $"missing '{k}'")
            .Concat(weights.Keys.Where(k => !destination.ContainsKey(k)).Select(k => $"unexpected '{k}'"))
            .Concat(destination.Where(d => weights.TryGetValue(d.Key, out var w) && !w.shape.SequenceEqual(d.Value.shape))
                .Select(d => $"'{d.Key}' has shape [{string.Join(", ", weights[d.Key].shape)}], the model [{string.Join(", ", d.Value.shape)}]"))
            .ToArray();
        if (problems.Length > 0)
            throw new InvalidDataException($"The {what} do not fit the model: {string.Join("; ", problems.Take(20))}{(problems.Length > 20 ? "; …" : "")}.");
        using var noGrad = no_grad();
        foreach (var (name, tensor) in destination)
            tensor.copy_(weights[name]);
    }
}
