using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Tests.Hardening;

public sealed class CheckpointHeaderTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    [Fact]
    public async Task ACheckpointWhoseHeaderShapeOverflowsIsSkippedLikeACorruptOne()
    {
        using var folder = new TempDirectory();
        var blobs = new FileSystemBlobStore(folder.Path);
        var store = new CheckpointStore(blobs, NullLogger<CheckpointStore>.Instance);
        foreach (int step in new[] { 10, 20 })
        {
            using var weight = full(3, (float)step);
            using var moment = zeros(3);
            var weights = new Dictionary<string, Tensor> { ["w"] = weight };
            var state = new TrainingState { RunId = "run", Step = step, SchedulePosition = step, LearningRate = 1e-4, Epoch = 1, Cursor = 0, Permutation = [0], NoiseRng = "AA==", DataRng = "AA==", DropoutRng = "AA==", EmaUpdates = step, DatasetVersion = "v", ItemCount = 1, RecipeHash = "r" };
            await store.SaveAsync("run", step, weights, weights, new Dictionary<string, Tensor> { ["exp_avg.w"] = moment }, state, Token);
        }

        // Step 20's raw weights claim a [2^32, 2^32] tensor; the manifest's checksum matches the forged file.
        byte[] header = Encoding.UTF8.GetBytes("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,12]}}");
        byte[] forged = [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. new byte[12]];
        string prefix = TrainingBlobs.Checkpoint("run", 20);
        await blobs.WriteAsync(prefix + CheckpointStore.RawFile, new MemoryStream(forged), cancellationToken: Token);
        CheckpointManifest manifest;
        await using (var stream = await blobs.OpenReadAsync(prefix + CheckpointStore.ManifestFile, Token))
            manifest = (await JsonSerializer.DeserializeAsync<CheckpointManifest>(stream, Json, Token))!;
        manifest = manifest with
        {
            Files = manifest.Files.Select(f => f.Name == CheckpointStore.RawFile
                ? f with { Bytes = forged.Length, Sha256 = Convert.ToHexStringLower(SHA256.HashData(forged)) }
                : f).ToArray(),
        };
        await blobs.WriteAsync(prefix + CheckpointStore.ManifestFile, new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(manifest, Json)), cancellationToken: Token);

        var lookup = await store.LoadLatestAsync("run", Token);
        using var checkpoint = lookup.Checkpoint;

        Assert.Equal(10, checkpoint!.Step);
        var skipped = Assert.Single(lookup.Skipped);
        Assert.Equal(20, skipped.Step);
        Assert.Contains("unreadable although its checksums match", skipped.Reason);
        Assert.Contains("more bytes than a file can", skipped.Reason);
    }
}
