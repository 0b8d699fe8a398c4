using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using SixLabors.ImageSharp;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Tests.Reliability;

/// <summary>
/// Faults injected into storage and workers: each run ends with every image exactly once, a complete manifest, and no
/// blob that reads as complete without being so.
/// </summary>
public sealed class FaultInjectionTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>
    /// Retries as a deployment under a storage outage would want them: many, quick (the queue's own redelivery is the loop
    /// below). A Stage A attempt of a 3-prompt batch makes about 7 store operations, so at a 20 % fault rate it fails
    /// about 4 times in 5; 60 attempts leave about 1 in 10⁶ that every one fails (12 left 1 in 17, which a run met).
    /// </summary>
    private static readonly Dictionary<string, string?> ManyQuickRetries = new()
    {
        ["Wuerstchen:Workflows:Retry:MaxAttempts"] = "60",
        ["Wuerstchen:Workflows:Retry:FirstInterval"] = "00:00:00.010",
        ["Wuerstchen:Workflows:Retry:BackoffCoefficient"] = "1.5",
        ["Wuerstchen:Workflows:Retry:MaxInterval"] = "00:00:00.100",
    };

    [Fact]
    public async Task ABulkJobOf24PromptsCompletesWhileTheStoreFailsOneOperationInFive()
    {
        const int prompts = 24;
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: ManyQuickRetries,
            configure: services => FaultyStore.Install(services, seed: 42, rate: 0.2));
        var store = (FaultyStore)environment.Store;
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        string message = HttpRequests.Json(new
        {
            jobId = "faulty",
            settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 900 },
            prompts = Enumerable.Range(0, prompts).Select(i => $"prompt number {i}").ToArray(),
        });

        // The queue redelivers a message whose trigger threw, up to host.json's maxDequeueCount (5).
        int deliveries = 0;
        IntakeOutcome? outcome = null;
        while (outcome is null)
        {
            Assert.True(++deliveries <= 5, "the message would have gone to the poison queue");
            try
            {
                outcome = await intake.AcceptAsync(environment.Client, message, $"delivery-{deliveries}", Token);
            }
            catch (IOException)
            {
            }
        }
        Assert.Equal(IntakeDisposition.Started, outcome.Disposition);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(4));
        var done = await environment.Client.WaitForInstanceCompletionAsync(BulkGenerateOrchestration.InstanceIdFor("faulty"), getInputsAndOutputs: true, timeout.Token);
        store.Enabled = false;

        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, $"{done.RuntimeStatus}: {done.FailureDetails?.ErrorMessage}");
        var summary = done.ReadOutputAs<BulkSummary>()!;
        var manifest = await BulkManifestWriter.ReadAsync(store, "faulty", Token);
        int lost = await AssertEveryImageExactlyOnceAsync(store, manifest, prompts);
        await AssertEveryLatentsBlobIsCompleteAsync(store);
        Assert.Equal((prompts, prompts), (summary.Total, summary.Succeeded));
        ReliabilityLog.Record($"fault injection, bulk job under storage faults: {prompts} prompts, {store.Operations} store operations, {store.Injected} faults injected (20 %, seed 42), {deliveries} queue deliveries, {summary.Succeeded} images, items lost = {lost}");
    }

    [Fact]
    public async Task AWorkerThatDiesAfterWritingEachStageBlobIsRetriedWithoutLossOrDuplicates()
    {
        var crashes = new CrashAfterWrite(name => name.StartsWith("latents/", StringComparison.Ordinal) || name.StartsWith("images/", StringComparison.Ordinal));
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, configure: crashes.Install);
        string body = HttpRequests.Json(new { prompt = "a worker that dies", width = 128, height = 256, images = 2, priorSteps = 3, decoderSteps = 2, seed = 77 });

        var started = Assert.IsType<AcceptedResult>(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body), environment.Client, Token));
        string id = (string)started.Value!.GetType().GetProperty("Id")!.GetValue(started.Value)!;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(3));
        var done = await environment.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, timeout.Token);

        Assert.True(done.RuntimeStatus == OrchestrationRuntimeStatus.Completed, $"{done.RuntimeStatus}: {done.FailureDetails?.ErrorMessage}");
        var result = done.ReadOutputAs<GenerationResult>()!;
        Assert.Equal(2, result.Images.Count);
        // Stage C, Stage B and both images: each worker died once right after its write landed.
        Assert.Equal(4, crashes.Crashes);
        var images = new List<BlobItemInfo>();
        await foreach (var blob in environment.Store.ListAsync("images/", Token))
            images.Add(blob);
        Assert.Equal(result.Images.Order(StringComparer.Ordinal), images.Select(i => i.Name));
        foreach (string image in result.Images)
        {
            await using var png = await environment.Store.OpenReadAsync(image, Token);
            Assert.NotNull(Image.Identify(png));
        }
        await AssertEveryLatentsBlobIsCompleteAsync(environment.Store);
        ReliabilityLog.Record($"fault injection, worker dies after writing a stage blob: {crashes.Crashes} crashes injected (Stage C, Stage B, 2 images), generation completed with {result.Images.Count} of 2 images, items lost = {2 - result.Images.Count}");
    }

    /// <summary>Every manifest entry succeeded with one image that exists, no image twice, nothing else under images/; returns the count missing.</summary>
    private static async Task<int> AssertEveryImageExactlyOnceAsync(IBlobStore store, IReadOnlyList<BulkManifestEntry> manifest, int prompts)
    {
        Assert.Equal(Enumerable.Range(0, prompts), manifest.Select(e => e.Index));
        Assert.All(manifest, e => Assert.Equal(BulkManifestWriter.Succeeded, e.Status));
        var listed = manifest.SelectMany(e => e.Images).ToArray();
        Assert.Equal(listed.Length, listed.Distinct().Count());
        var stored = new List<string>();
        await foreach (var blob in store.ListAsync("images/", Token))
            stored.Add(blob.Name);
        Assert.Equal(listed.Order(StringComparer.Ordinal), stored.Order(StringComparer.Ordinal));
        return prompts - listed.Count(stored.Contains);
    }

    /// <summary>A latents blob is either absent or a whole safetensors file carrying its stage key.</summary>
    private static async Task AssertEveryLatentsBlobIsCompleteAsync(IBlobStore store)
    {
        await foreach (var blob in store.ListAsync("latents/", Token))
        {
            Assert.True(blob.Metadata.ContainsKey("stageKey"), $"{blob.Name} has no stage key");
            await using var stream = await store.OpenReadAsync(blob.Name, Token);
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, Token);
            buffer.Position = 0;
            var (tensors, _) = SafetensorsFile.ReadAll(buffer, blob.Name);
            foreach (var tensor in tensors.Values)
                tensor.Dispose();
        }
    }

    /// <summary>The worker dies (the activity throws) right after the first write of each matching blob has landed.</summary>
    private sealed class CrashAfterWrite(Func<string, bool> matches)
    {
        private readonly HashSet<string> _crashed = new(StringComparer.Ordinal);

        public int Crashes
        {
            get
            {
                lock (_crashed)
                    return _crashed.Count;
            }
        }

        public void Install(IServiceCollection services)
        {
            var original = services.Single(d => d.ServiceType == typeof(IBlobStore));
            services.Remove(original);
            services.AddSingleton<IBlobStore>(provider => new Decorator((IBlobStore)original.ImplementationFactory!(provider), this));
        }

        private bool ShouldCrash(string name)
        {
            if (!matches(name))
                return false;
            lock (_crashed)
                return _crashed.Add(name);
        }

        private sealed class Decorator(IBlobStore inner, CrashAfterWrite owner) : IBlobStore
        {
            public string Description => inner.Description;
            public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default) => inner.ExistsAsync(name, cancellationToken);
            public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default) => inner.GetInfoAsync(name, cancellationToken);
            public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default) => inner.OpenReadAsync(name, cancellationToken);
            public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(name, cancellationToken);
            public IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
            public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default) => inner.GetReadUriAsync(name, lifetime, cancellationToken);

            public async Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default)
            {
                await inner.WriteAsync(name, content, options, cancellationToken);
                if (owner.ShouldCrash(name))
                    throw new IOException($"Simulated worker death after writing {name}.");
            }
        }
    }
}
