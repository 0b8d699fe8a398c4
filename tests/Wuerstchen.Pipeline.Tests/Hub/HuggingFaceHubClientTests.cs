using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Hub;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Tests.Hub;

public sealed class HuggingFaceHubClientTests : IDisposable
{
    private static readonly string PriorCommit = HubFixtures.CommitOf("prior");
    private static readonly string DecoderCommit = HubFixtures.CommitOf("decoder");
    private static readonly TimeSpan FailFastBound = TimeSpan.FromSeconds(30);

    private readonly TempDirectory _temp = new();
    private readonly FakeHubServer _server = new();
    private readonly ListLogger<HuggingFaceHubClient> _log = new();

    public void Dispose()
    {
        _server.Dispose();
        _temp.Dispose();
    }

    private static CancellationToken Cancellation => TestContext.Current.CancellationToken;

    private string CacheDirectory => Path.Combine(_temp.Path, "hf", "hub");

    private HubOptions Options(Uri? endpoint = null) => new()
    {
        Endpoint = endpoint ?? _server.Endpoint,
        CacheDirectory = CacheDirectory,
        RetryDelay = TimeSpan.FromMilliseconds(10),
        ReadTimeout = TimeSpan.FromSeconds(10),
    };

    private HuggingFaceHubClient Client(HubOptions? options = null) => new(options ?? Options(), _log);

    private Dictionary<string, byte[]> ServePrior(Action<Dictionary<string, byte[]>>? change = null)
    {
        var tree = HubFixtures.Tree("models/prior-pipeline");
        change?.Invoke(tree);
        _server.AddRepo(HubFixtures.PriorRepo, PriorCommit, tree, "main");
        return tree;
    }

    private static string[] NeededPriorFiles(string? variant = null)
    {
        string suffix = variant is null ? "" : "." + variant;
        return
        [
            "model_index.json", "prior/config.json", $"prior/diffusion_pytorch_model{suffix}.safetensors", "scheduler/scheduler_config.json",
            "text_encoder/config.json", $"text_encoder/model{suffix}.safetensors", "tokenizer/merges.txt", "tokenizer/special_tokens_map.json",
            "tokenizer/tokenizer.json", "tokenizer/tokenizer_config.json", "tokenizer/vocab.json",
        ];
    }

    private static void AssertSnapshotHolds(HubSnapshot snapshot, IReadOnlyDictionary<string, byte[]> tree, IEnumerable<string> files)
    {
        foreach (string path in files)
            Assert.True(tree[path].AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(snapshot.Directory, path))), $"{path} differs from the served file");
    }

    [Fact]
    public async Task DownloadsBothPipelinesIntoTheHuggingFaceCacheLayoutForModelRepository()
    {
        var prior = ServePrior();
        var decoder = HubFixtures.Tree("models/decoder-pipeline");
        HubFixtures.Shard(decoder, "models/decoder-pipeline", "decoder", "diffusion_pytorch_model");
        _server.AddRepo(HubFixtures.DecoderRepo, DecoderCommit, decoder, "main");
        using var client = Client();

        var priorSnapshot = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);
        var decoderSnapshot = await client.DownloadSnapshotAsync(HubFixtures.DecoderRepo, cancellationToken: Cancellation);

        string priorFolder = Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior");
        Assert.Equal(Path.Combine(priorFolder, "snapshots", PriorCommit), priorSnapshot.Directory);
        Assert.Equal(PriorCommit, priorSnapshot.Commit);
        Assert.False(priorSnapshot.FromCache);
        Assert.Equal(PriorCommit, File.ReadAllText(Path.Combine(priorFolder, "refs", "main")));
        Assert.Equal(DecoderCommit, File.ReadAllText(Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen", "refs", "main")));
        Assert.Equal(NeededPriorFiles(), priorSnapshot.Files);
        AssertSnapshotHolds(priorSnapshot, prior, priorSnapshot.Files);
        AssertSnapshotHolds(decoderSnapshot, decoder, decoderSnapshot.Files);
        Assert.Contains("decoder/diffusion_pytorch_model-00002-of-00002.safetensors", decoderSnapshot.Files);

        foreach (string path in priorSnapshot.Files)
        {
            var pointer = new FileInfo(Path.Combine(priorSnapshot.Directory, path));
            string etag = FakeHubServer.IsLfs(path) ? FakeHubServer.Sha256(prior[path]) : FakeHubServer.GitBlobId(prior[path]);
            Assert.Equal(Path.GetRelativePath(pointer.DirectoryName!, Path.Combine(priorFolder, "blobs", etag)), pointer.LinkTarget);
        }
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(priorFolder, "blobs"), "*.incomplete"));

        foreach (var snapshot in new[] { priorSnapshot, decoderSnapshot })
        {
            var repository = ModelRepository.Open(snapshot.Directory);
            foreach (var name in repository.Index!.Components.Keys.Where(c => File.Exists(Path.Combine(snapshot.Directory, c, "config.json"))))
            {
                using var weights = repository.Component(name).OpenWeights();
                string fixture = ParityFixtures.PathOf(snapshot.RepoId == HubFixtures.PriorRepo ? "models/prior-pipeline" : "models/decoder-pipeline");
                string original = Directory.EnumerateFiles(Path.Combine(fixture, name), "*.safetensors").Single();
                using var expected = SafetensorsFile.Open(original);
                Assert.Equal(expected.Tensors.Keys.Order(StringComparer.Ordinal), weights.Keys.Order(StringComparer.Ordinal));
            }
        }
        Assert.Equal(2, ModelRepository.Open(decoderSnapshot.Directory).Component("decoder").WeightFiles().Count);
    }

    [Fact]
    public async Task FetchesOnlyTheFilesAPipelineNeeds()
    {
        ServePrior();
        using var client = Client();

        await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);

        var touched = _server.Requests.Where(r => r.FilePath is not null).Select(r => r.FilePath!).Distinct().Order(StringComparer.Ordinal);
        Assert.Equal(NeededPriorFiles(), touched);
        Assert.Equal(NeededPriorFiles(), _server.Downloads.Select(r => r.FilePath!).Order(StringComparer.Ordinal));
        Assert.DoesNotContain(_server.Requests, r => HubFixtures.UnneededFiles.Any(u => r.Path.EndsWith(u, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task ASecondDownloadOfACompleteSnapshotOnlyListsTheRevision()
    {
        ServePrior();
        using var client = Client();
        var first = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);
        _server.Requests.Clear();

        var second = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);

        Assert.Equal(first.Directory, second.Directory);
        Assert.Equal(first.Files, second.Files);
        Assert.Equal(["/api/models/warp-ai/wuerstchen-prior/revision/main"], _server.Requests.Select(r => r.Path));
    }

    [Fact]
    public async Task TakesTheFp16VariantInsteadOfTheFullWeightsWhereThereIsOne()
    {
        var tree = ServePrior(t => HubFixtures.AddFp16Copies(t, "models/prior-pipeline", "prior"));
        using var client = Client();

        var snapshot = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, variant: "fp16", cancellationToken: Cancellation);

        Assert.Contains("prior/diffusion_pytorch_model.fp16.safetensors", snapshot.Files);
        Assert.DoesNotContain("prior/diffusion_pytorch_model.safetensors", snapshot.Files);
        Assert.Contains("text_encoder/model.safetensors", snapshot.Files); // no fp16 copy there: the full weights
        Assert.DoesNotContain(_server.Requests, r => r.FilePath == "prior/diffusion_pytorch_model.safetensors");
        AssertSnapshotHolds(snapshot, tree, snapshot.Files);
        Assert.Contains(_log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("fp16", StringComparison.Ordinal) && e.Message.Contains("text_encoder", StringComparison.Ordinal));

        var prior = ModelRepository.Open(snapshot.Directory).Component("prior");
        using var weights = prior.OpenWeights("fp16");
        Assert.All(weights.Keys, k => Assert.Equal("F16", weights.Info(k).DType));
    }

    [Fact]
    public async Task AnInterruptedDownloadResumesWithARangeRequest()
    {
        const string path = "prior/diffusion_pytorch_model.safetensors";
        var tree = ServePrior();
        _server.DropConnectionOnce(path);
        using var client = Client();

        var snapshot = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);

        var gets = _server.Downloads.Where(r => r.FilePath == path).ToArray();
        Assert.Equal(2, gets.Length);
        Assert.Null(gets[0].Range);
        Assert.Equal($"bytes={_server.DropAfterBytes}-", gets[1].Range);
        AssertSnapshotHolds(snapshot, tree, [path]);
        Assert.Contains(_log.Entries, e => e.Level == LogLevel.Warning && e.Fields.Any(f => f.Key == "Path" && (string?)f.Value == path));
    }

    [Fact]
    public async Task ADownloadLeftIncompleteByAnEarlierCallResumesFromItsPartialFile()
    {
        const string path = "prior/diffusion_pytorch_model.safetensors";
        var tree = ServePrior();
        _server.DropConnectionOnce(path);
        string incomplete = Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior", "blobs", FakeHubServer.Sha256(tree[path]) + ".incomplete");

        using (var impatient = Client(Options() with { MaxRetries = 0, MaxParallelDownloads = 1 }))
        {
            var error = await Assert.ThrowsAsync<HubRequestException>(() => impatient.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));
            Assert.Contains(path, error.Message);
        }
        Assert.Equal(_server.DropAfterBytes, new FileInfo(incomplete).Length);
        Assert.False(File.Exists(Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior", "refs", "main")));

        using var client = Client();
        var snapshot = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);

        Assert.Equal([null, $"bytes={_server.DropAfterBytes}-"], _server.Downloads.Where(r => r.FilePath == path).Select(r => r.Range));
        AssertSnapshotHolds(snapshot, tree, snapshot.Files);
        Assert.False(File.Exists(incomplete));
    }

    [Fact]
    public async Task ACorruptedLfsFileFailsItsSha256AndLeavesNothingBehind()
    {
        const string path = "prior/diffusion_pytorch_model.safetensors";
        var tree = ServePrior();
        _server.CorruptBody(path);
        using var client = Client();

        var error = await Assert.ThrowsAsync<HubFileVerificationException>(() => client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));

        Assert.Equal(path, error.Path);
        Assert.Contains(path, error.Message);
        Assert.Contains("SHA-256", error.Message);
        string blobs = Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior", "blobs");
        string sha = FakeHubServer.Sha256(tree[path]);
        Assert.False(File.Exists(Path.Combine(blobs, sha)));
        Assert.False(File.Exists(Path.Combine(blobs, sha + ".incomplete")));
        Assert.False(File.Exists(Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior", "snapshots", PriorCommit, path)));
    }

    [Fact]
    public async Task AShortNonLfsFileFailsItsSizeCheck()
    {
        const string path = "tokenizer/vocab.json";
        var tree = ServePrior();
        _server.TruncateBody(path);
        using var client = Client();

        var error = await Assert.ThrowsAsync<HubFileVerificationException>(() => client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));

        Assert.Equal(path, error.Path);
        Assert.Contains("size", error.Message);
        string blob = Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior", "blobs", FakeHubServer.GitBlobId(tree[path]));
        Assert.False(File.Exists(blob));
        Assert.False(File.Exists(blob + ".incomplete"));
    }

    [Fact]
    public async Task OfflineAWarmCacheAnswersWithoutAnyRequest()
    {
        ServePrior();
        HubSnapshot online;
        using (var client = Client())
            online = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);
        int requests = _server.Requests.Count;

        using var offline = Client(Options() with { Offline = true });
        var snapshot = await offline.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);

        Assert.True(snapshot.FromCache);
        Assert.Equal(online.Directory, snapshot.Directory);
        Assert.Equal(online.Files, snapshot.Files);
        Assert.Equal(requests, _server.Requests.Count);
        ModelRepository.Open(snapshot.Directory).Component("prior").WeightFiles();
    }

    [Fact]
    public async Task OfflineAColdCacheFailsAtOnceNamingTheRevision()
    {
        ServePrior();
        using var offline = Client(Options() with { Offline = true });

        var error = await Assert.ThrowsAsync<HubCacheMissException>(() => offline.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));

        Assert.Equal(["refs/main"], error.MissingFiles);
        Assert.Contains(HubFixtures.PriorRepo, error.Message);
        Assert.Contains("offline", error.Message);
        Assert.Empty(_server.Requests);
    }

    [Fact]
    public async Task OfflineAPartialCacheListsExactlyTheMissingFiles()
    {
        var tree = ServePrior(t => HubFixtures.AddFp16Copies(t, "models/prior-pipeline", "prior"));
        HubSnapshot online;
        using (var client = Client())
            online = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, variant: "fp16", cancellationToken: Cancellation);
        string blobs = Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior", "blobs");
        File.Delete(Path.Combine(blobs, FakeHubServer.Sha256(tree["prior/diffusion_pytorch_model.fp16.safetensors"])));
        File.Delete(Path.Combine(online.Directory, "text_encoder", "config.json"));
        Directory.Delete(Path.Combine(online.Directory, "scheduler"), recursive: true);

        using var offline = Client(Options() with { Offline = true });
        var fp16 = await Assert.ThrowsAsync<HubCacheMissException>(() => offline.DownloadSnapshotAsync(HubFixtures.PriorRepo, variant: "fp16", cancellationToken: Cancellation));
        var full = await Assert.ThrowsAsync<HubCacheMissException>(() => offline.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));

        // The dangling fp16 pointer names the lost blob; the full weights of prior were never fetched. text_encoder has no
        // fp16 variant, so its full weights serve both requests.
        Assert.Equal(["prior/diffusion_pytorch_model.fp16.safetensors", "scheduler/ (the whole component)", "text_encoder/config.json"], fp16.MissingFiles);
        Assert.Contains("prior/diffusion_pytorch_model.fp16.safetensors", fp16.Message);
        Assert.Equal(["prior/diffusion_pytorch_model.safetensors", "scheduler/ (the whole component)", "text_encoder/config.json"], full.MissingFiles);
    }

    [Fact]
    public async Task AnUnreachableEndpointFailsFastListingWhatTheCacheLacks()
    {
        var closed = new Uri($"http://127.0.0.1:{ClosedPort()}");
        using var client = Client(Options(closed));
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<HubCacheMissException>(() => client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));

        Assert.True(clock.Elapsed < FailFastBound, $"took {clock.Elapsed}");
        Assert.Equal(["refs/main"], error.MissingFiles);
        Assert.Contains("cannot be reached", error.Message);
        var cause = Assert.IsType<HubRequestException>(error.InnerException);
        Assert.Null(cause.StatusCode);
    }

    [Fact]
    public async Task AnEndpointThatNeverAnswersFailsAfterTheMetadataTimeout()
    {
        var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        try
        {
            using var client = Client(Options(new Uri($"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}")) with { MetadataTimeout = TimeSpan.FromSeconds(1) });
            var clock = Stopwatch.StartNew();

            var error = await Assert.ThrowsAsync<HubCacheMissException>(() => client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));

            Assert.True(clock.Elapsed < FailFastBound, $"took {clock.Elapsed}");
            Assert.Contains("did not answer", error.Message);
        }
        finally
        {
            silent.Stop();
        }
    }

    [Fact]
    public async Task AnUnreachableEndpointFallsBackToACompleteCache()
    {
        ServePrior();
        HubSnapshot online;
        using (var client = Client())
            online = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);

        using var unreachable = Client(Options(new Uri($"http://127.0.0.1:{ClosedPort()}")));
        var snapshot = await unreachable.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);

        Assert.True(snapshot.FromCache);
        Assert.Equal(online.Directory, snapshot.Directory);
        Assert.Contains(_log.Entries, e => e.Level == LogLevel.Warning && e.Message.Contains("unreachable", StringComparison.Ordinal));
    }

    [Fact]
    public async Task SendsTheTokenAsBearerToTheHubOnlyAndNeverLogsIt()
    {
        const string token = "hf_secretTokenValue123";
        ServePrior();
        _server.RequiredToken = token;

        using (var anonymous = Client())
        {
            var denied = await Assert.ThrowsAsync<HubRequestException>(() => anonymous.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));
            Assert.Equal(HttpStatusCode.Unauthorized, denied.StatusCode);
            Assert.Contains("HF_TOKEN", denied.Message);
        }
        _server.Requests.Clear();

        var options = Options() with { Token = token };
        using var client = Client(options);
        await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation);

        var hub = _server.Requests.Where(r => r.Host == "127.0.0.1").ToArray();
        var storage = _server.Requests.Where(r => r.Host == "localhost").ToArray();
        Assert.NotEmpty(storage);
        Assert.All(hub, r => Assert.Equal($"Bearer {token}", r.Authorization));
        Assert.All(storage, r => Assert.Null(r.Authorization));
        Assert.DoesNotContain(_log.AllText, t => t.Contains(token, StringComparison.Ordinal));
        Assert.DoesNotContain(token, options.ToString());
    }

    [Fact]
    public async Task ConcurrentDownloadsOfTheSameRepositoryShareEachBlob()
    {
        var tree = ServePrior();
        _server.ChunkDelay = TimeSpan.FromMilliseconds(10);
        using var first = Client();
        using var second = Client();

        var snapshots = await Task.WhenAll(
            first.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation),
            second.DownloadSnapshotAsync(HubFixtures.PriorRepo, cancellationToken: Cancellation));

        Assert.Equal(snapshots[0].Files, snapshots[1].Files);
        AssertSnapshotHolds(snapshots[1], tree, snapshots[1].Files);
        var downloadsPerFile = _server.Downloads.GroupBy(r => r.FilePath).ToDictionary(g => g.Key!, g => g.Count());
        Assert.All(downloadsPerFile, d => Assert.True(d.Value == 1, $"{d.Key} was downloaded {d.Value} times"));
        Assert.Contains(_log.Entries, e => e.Message.StartsWith("Waiting for another download", StringComparison.Ordinal));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior", "blobs"), "*.incomplete"));
    }

    [Fact]
    public async Task ReportsProgressUpToEachFilesSize()
    {
        var tree = ServePrior();
        var reports = new List<DownloadProgress>();
        using var client = Client();

        var snapshot = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, progress: new SynchronousProgress(reports), cancellationToken: Cancellation);

        foreach (string path in snapshot.Files)
        {
            var last = reports.Where(r => r.Path == path).Last();
            Assert.Equal(tree[path].Length, last.TotalBytes);
            Assert.Equal(last.TotalBytes, last.BytesDownloaded);
            Assert.Equal(HubFixtures.PriorRepo, last.RepoId);
        }
    }

    [Fact]
    public async Task AResumedDownloadReportsFromWhereItResumesAndNeverPastTheFileSize()
    {
        const string path = "prior/diffusion_pytorch_model.safetensors";
        var tree = ServePrior();
        _server.DropConnectionOnce(path);
        var reports = new List<DownloadProgress>();
        using var client = Client(Options() with { MaxParallelDownloads = 1 });

        await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, progress: new SynchronousProgress(reports), cancellationToken: Cancellation);

        // The first request starts from nothing, the resumed one from the bytes kept…
        Assert.Equal([0, _server.DropAfterBytes], reports.Where(r => r.Path == path && r.Starting).Select(r => r.BytesDownloaded));
        var file = reports.Where(r => r.Path == path).Select(r => r.BytesDownloaded).ToArray();
        Assert.Equal(0, file[0]);
        Assert.Equal(tree[path].Length, file[^1]); // …and the reports reach the file's size
        Assert.All(file, bytes => Assert.InRange(bytes, 0, tree[path].Length));
        int resumedAt = Array.LastIndexOf(file, _server.DropAfterBytes);
        Assert.True(file[resumedAt..].Zip(file[(resumedAt + 1)..]).All(p => p.First <= p.Second), "after resuming, progress only grows");
    }

    [Fact]
    public async Task ARevisionIsListedByNameAndItsFilesAreFetchedAtTheCommitItNames()
    {
        var main = ServePrior();
        string taggedCommit = HubFixtures.CommitOf("prior v1.0");
        var tagged = HubFixtures.Tree("models/prior-pipeline");
        tagged["model_index.json"] = [.. tagged["model_index.json"], (byte)'\n'];
        _server.AddRepo(HubFixtures.PriorRepo, taggedCommit, tagged, "v1.0");
        using var client = Client();

        var snapshot = await client.DownloadSnapshotAsync(HubFixtures.PriorRepo, "v1.0", cancellationToken: Cancellation);

        Assert.Equal(("v1.0", taggedCommit), (snapshot.Revision, snapshot.Commit));
        Assert.Contains(_server.Requests, r => r.Path == $"/api/models/{HubFixtures.PriorRepo}/revision/v1.0");
        var resolves = _server.Requests.Where(r => r.Path.Contains("/resolve/", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(resolves);
        Assert.All(resolves, r => Assert.StartsWith($"/{HubFixtures.PriorRepo}/resolve/{taggedCommit}/", r.Path));
        AssertSnapshotHolds(snapshot, tagged, snapshot.Files);
        string repository = Path.Combine(CacheDirectory, "models--warp-ai--wuerstchen-prior");
        Assert.Equal(taggedCommit, File.ReadAllText(Path.Combine(repository, "refs", "v1.0")));
        Assert.False(File.Exists(Path.Combine(repository, "refs", "main")));
        Assert.NotEqual(main["model_index.json"].Length, File.ReadAllBytes(Path.Combine(snapshot.Directory, "model_index.json")).Length);

        // The pinned name resolves to that snapshot, and the plain name does not (main was never downloaded).
        var locator = new ModelLocator(Microsoft.Extensions.Options.Options.Create(new ModelOptions { Root = Path.GetDirectoryName(CacheDirectory)! }));
        Assert.Equal(snapshot.Directory, locator.TryResolve($"{HubFixtures.PriorRepo}@v1.0", out _));
        Assert.Null(locator.TryResolve(HubFixtures.PriorRepo, out _));
        Assert.Null(locator.TryResolve($"{HubFixtures.PriorRepo}@v2.0", out var searched));
        Assert.Contains(searched, s => s.Contains("no download of revision 'v2.0'", StringComparison.Ordinal));
        Assert.Contains($"{HubFixtures.PriorRepo}@v1.0", locator.Available(ModelRole.Prior));
    }

    [Theory]
    [InlineData("warp-ai/wuerstchen-prior@v1.0", true)]
    [InlineData("warp-ai/wuerstchen-prior@refs/pr/1", true)]
    [InlineData("warp-ai/wuerstchen-prior@0123456789abcdef0123456789abcdef01234567", true)]
    [InlineData("warp-ai/wuerstchen-prior@", false)]
    [InlineData("warp-ai/wuerstchen-prior@../../etc", false)]
    [InlineData("warp-ai/wuerstchen-prior@v 1", false)]
    [InlineData("prior-pipeline@v1.0", false)]
    public void AModelNameTakesARevisionOnlyAfterAHubRepositoryId(string name, bool wellFormed) =>
        Assert.Equal(wellFormed, ModelLocator.IsWellFormed(name));

    [Fact]
    public async Task AnUnknownRepositoryIsReportedAsNotFound()
    {
        using var client = Client();

        var error = await Assert.ThrowsAsync<HubRequestException>(() => client.DownloadSnapshotAsync("nobody/nothing", cancellationToken: Cancellation));

        Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
        Assert.Contains("nobody/nothing", error.Message);
    }

    [Theory]
    [InlineData("no-owner")]
    [InlineData("../escape")]
    [InlineData("owner/../name")]
    public async Task RefusesARepositoryIdThatIsNotOwnerSlashName(string repoId)
    {
        using var client = Client();
        await Assert.ThrowsAsync<ArgumentException>(() => client.DownloadSnapshotAsync(repoId, cancellationToken: Cancellation));
    }

    private static int ClosedPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    /// <summary><see cref="Progress{T}"/> posts to the thread pool; tests need every report before the call returns.</summary>
    private sealed class SynchronousProgress(List<DownloadProgress> reports) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value)
        {
            lock (reports)
                reports.Add(value);
        }
    }
}
