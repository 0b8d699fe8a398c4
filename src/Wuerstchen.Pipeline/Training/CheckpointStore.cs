using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using TorchSharp;
using Wuerstchen.Models.IO;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Training;

public sealed record CheckpointFile(string Name, long Bytes, string Sha256);

/// <summary>The last blob of a checkpoint: what it holds and each file's checksum. A checkpoint without it is incomplete.</summary>
public sealed record CheckpointManifest(string Format, string RunId, int Step, IReadOnlyList<CheckpointFile> Files);

/// <summary>A checkpoint passed over on resume, and why.</summary>
public sealed record SkippedCheckpoint(int Step, string Reason);

/// <summary>A checkpoint folder as listed: its step, where it lies, and whether its manifest is there.</summary>
public sealed record CheckpointInfo(int Step, string Prefix, bool Complete);

/// <summary>A verified checkpoint read back into CPU tensors (the caller disposes it).</summary>
public sealed class LoadedCheckpoint : IDisposable
{
    public required int Step { get; init; }
    public required string Prefix { get; init; }
    public required Dictionary<string, torch.Tensor> Raw { get; init; }
    public required Dictionary<string, torch.Tensor> Ema { get; init; }
    public required Dictionary<string, torch.Tensor> Optimizer { get; init; }
    public required TrainingState State { get; init; }

    public void Dispose()
    {
        foreach (var tensor in Raw.Values.Concat(Ema.Values).Concat(Optimizer.Values))
            tensor.Dispose();
    }
}

/// <summary>The newest checkpoint that passed verification (null when none did) and the newer ones skipped.</summary>
public sealed record CheckpointLookup(LoadedCheckpoint? Checkpoint, IReadOnlyList<SkippedCheckpoint> Skipped);

/// <summary>
/// Checkpoints in blob storage, one folder per step (<c>training/runs/{run}/checkpoints/{step:D8}/</c>): raw weights,
/// EMA weights and AdamW's state as safetensors, the <see cref="TrainingState"/> as JSON, and last, once everything
/// else is written, a manifest with each file's size and sha256. Loading takes the newest checkpoint whose manifest
/// exists and whose every file matches it; a partial or corrupt one is skipped with its reason.
/// </summary>
public sealed partial class CheckpointStore(IBlobStore store, ILogger<CheckpointStore> logger)
{
    public const string Format = "wuerstchen-stage-c-checkpoint/1";
    public const string RawFile = "raw.safetensors";
    public const string EmaFile = "ema.safetensors";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string StateFile = "state.json";
    public const string ManifestFile = "manifest.json";

    private static readonly string[] RequiredFiles = [RawFile, EmaFile, OptimizerFile, StateFile];
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public async Task<string> SaveAsync(string runId, int step, IReadOnlyDictionary<string, torch.Tensor> raw, IReadOnlyDictionary<string, torch.Tensor> ema,
        IReadOnlyDictionary<string, torch.Tensor> optimizer, TrainingState state, CancellationToken cancellationToken)
    {
        string prefix = TrainingBlobs.Checkpoint(runId, step);
        // A checkpoint rewritten at the same step (a resumed run that had skipped it) is incomplete until its new manifest lands.
        await store.DeleteAsync(prefix + ManifestFile, cancellationToken).ConfigureAwait(false);
        string temp = Directory.CreateTempSubdirectory("wuerstchen-checkpoint-").FullName;
        try
        {
            var files = new List<CheckpointFile>();
            var metadata = new Dictionary<string, string> { ["format"] = Format, ["runId"] = runId, ["step"] = step.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            foreach (var (name, tensors) in new[] { (RawFile, raw), (EmaFile, ema), (OptimizerFile, optimizer) })
            {
                string path = Path.Combine(temp, name);
                SafetensorsWriter.Save(path, tensors, metadata);
                files.Add(await UploadAsync(prefix + name, path, "application/octet-stream", cancellationToken).ConfigureAwait(false));
            }
            string statePath = Path.Combine(temp, StateFile);
            await File.WriteAllBytesAsync(statePath, JsonSerializer.SerializeToUtf8Bytes(state, Json), cancellationToken).ConfigureAwait(false);
            files.Add(await UploadAsync(prefix + StateFile, statePath, "application/json", cancellationToken).ConfigureAwait(false));

            var manifest = new CheckpointManifest(Format, runId, step, files);
            using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(manifest, Json));
            await store.WriteAsync(prefix + ManifestFile, content, new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
            LogSaved(runId, step, prefix);
            return prefix;
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>Every checkpoint folder of the run, newest first.</summary>
    public async Task<IReadOnlyList<CheckpointInfo>> ListAsync(string runId, CancellationToken cancellationToken)
    {
        string prefix = TrainingBlobs.CheckpointsPrefix(runId);
        var steps = new SortedDictionary<int, bool>(Comparer<int>.Create((a, b) => b.CompareTo(a)));
        await foreach (var blob in store.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            string rest = blob.Name[prefix.Length..];
            int slash = rest.IndexOf('/');
            if (slash <= 0 || !int.TryParse(rest[..slash], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int step))
                continue;
            steps[step] = steps.GetValueOrDefault(step) || rest[(slash + 1)..] == ManifestFile;
        }
        return steps.Select(s => new CheckpointInfo(s.Key, TrainingBlobs.Checkpoint(runId, s.Key), s.Value)).ToArray();
    }

    /// <summary>The newest checkpoint that verifies, skipping (and naming) every newer one that does not.</summary>
    public async Task<CheckpointLookup> LoadLatestAsync(string runId, CancellationToken cancellationToken)
    {
        var skipped = new List<SkippedCheckpoint>();
        foreach (var info in await ListAsync(runId, cancellationToken).ConfigureAwait(false))
        {
            var (checkpoint, reason) = await TryLoadAsync(runId, info.Step, cancellationToken).ConfigureAwait(false);
            if (checkpoint is not null)
                return new CheckpointLookup(checkpoint, skipped);
            skipped.Add(new SkippedCheckpoint(info.Step, reason!));
            LogSkipped(runId, info.Step, reason!);
        }
        return new CheckpointLookup(null, skipped);
    }

    /// <summary>The checkpoint at <paramref name="step"/> if it verifies; otherwise null and the reason.</summary>
    public async Task<(LoadedCheckpoint? Checkpoint, string? Reason)> TryLoadAsync(string runId, int step, CancellationToken cancellationToken)
    {
        string prefix = TrainingBlobs.Checkpoint(runId, step);
        CheckpointManifest? manifest;
        try
        {
            await using var stream = await store.OpenReadAsync(prefix + ManifestFile, cancellationToken).ConfigureAwait(false);
            manifest = await JsonSerializer.DeserializeAsync<CheckpointManifest>(stream, Json, cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
            return (null, "incomplete: it has no manifest (the write did not finish).");
        }
        catch (JsonException e)
        {
            return (null, $"the manifest is unreadable: {e.Message}");
        }
        if (manifest is null || manifest.Format != Format || manifest.RunId != runId || manifest.Step != step || manifest.Files is null)
            return (null, "the manifest does not describe this checkpoint (format, run or step differ).");
        var missing = RequiredFiles.Where(f => manifest.Files.All(m => m.Name != f)).ToArray();
        if (missing.Length > 0)
            return (null, $"the manifest lists no {string.Join(", ", missing)}.");

        string temp = Directory.CreateTempSubdirectory("wuerstchen-checkpoint-").FullName;
        var tensors = new Dictionary<string, Dictionary<string, torch.Tensor>>();
        try
        {
            foreach (var file in manifest.Files)
            {
                string path = Path.Combine(temp, file.Name);
                if (await DownloadAsync(prefix + file.Name, path, cancellationToken).ConfigureAwait(false) is not { } actual)
                    return (null, $"{file.Name} is missing.");
                if (actual.Bytes != file.Bytes || actual.Sha256 != file.Sha256)
                    return (null, $"{file.Name} fails its checksum ({actual.Bytes} bytes, sha256 {actual.Sha256[..12]}…; the manifest says {file.Bytes} bytes, {file.Sha256[..Math.Min(12, file.Sha256.Length)]}…).");
            }
            foreach (string name in new[] { RawFile, EmaFile, OptimizerFile })
            {
                using var stream = File.OpenRead(Path.Combine(temp, name));
                tensors[name] = SafetensorsFile.ReadAll(stream, prefix + name).Tensors;
            }
            var state = JsonSerializer.Deserialize<TrainingState>(await File.ReadAllBytesAsync(Path.Combine(temp, StateFile), cancellationToken).ConfigureAwait(false), Json);
            if (state is null || state.Step != step || state.RunId != runId)
                throw new InvalidDataException($"{StateFile} does not describe step {step} of run {runId}.");
            var loaded = new LoadedCheckpoint
            {
                Step = step,
                Prefix = prefix,
                Raw = tensors[RawFile],
                Ema = tensors[EmaFile],
                Optimizer = tensors[OptimizerFile],
                State = state,
            };
            tensors.Clear();
            return (loaded, null);
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or SafetensorsFormatException)
        {
            return (null, $"unreadable although its checksums match: {e.Message}");
        }
        finally
        {
            foreach (var tensor in tensors.Values.SelectMany(t => t.Values))
                tensor.Dispose();
            Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>Deletes every checkpoint older than the newest <paramref name="keep"/> complete ones.</summary>
    public async Task PruneAsync(string runId, int keep, CancellationToken cancellationToken)
    {
        var all = await ListAsync(runId, cancellationToken).ConfigureAwait(false);
        var kept = all.Where(c => c.Complete).Take(keep).ToArray();
        if (kept.Length < keep)
            return;
        int oldestKept = kept[^1].Step;
        foreach (var old in all.Where(c => c.Step < oldestKept))
        {
            var names = new List<string>();
            await foreach (var blob in store.ListAsync(old.Prefix, cancellationToken).ConfigureAwait(false))
                names.Add(blob.Name);
            // The manifest goes first, so a half-deleted checkpoint reads as incomplete rather than corrupt.
            foreach (string name in names.OrderBy(n => n.EndsWith(ManifestFile, StringComparison.Ordinal) ? 0 : 1))
                await store.DeleteAsync(name, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<CheckpointFile> UploadAsync(string blob, string path, string contentType, CancellationToken cancellationToken)
    {
        string sha;
        await using (var read = File.OpenRead(path))
            sha = await TrainingHashes.OfStreamAsync(read, cancellationToken).ConfigureAwait(false);
        await using var content = File.OpenRead(path);
        await store.WriteAsync(blob, content, new BlobWriteOptions { ContentType = contentType }, cancellationToken).ConfigureAwait(false);
        return new CheckpointFile(blob[(blob.LastIndexOf('/') + 1)..], content.Length, sha);
    }

    private async Task<CheckpointFile?> DownloadAsync(string blob, string path, CancellationToken cancellationToken)
    {
        try
        {
            await using var source = await store.OpenReadAsync(blob, cancellationToken).ConfigureAwait(false);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using var target = File.Create(path);
            byte[] buffer = new byte[1 << 20];
            long total = 0;
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                total += read;
            }
            return new CheckpointFile(Path.GetFileName(path), total, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }
        catch (BlobNotFoundException)
        {
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Checkpoint of run {RunId} at step {Step} written to {Prefix}")]
    private partial void LogSaved(string runId, int step, string prefix);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Skipped checkpoint of run {RunId} at step {Step}: {Reason}")]
    private partial void LogSkipped(string runId, int step, string reason);
}
