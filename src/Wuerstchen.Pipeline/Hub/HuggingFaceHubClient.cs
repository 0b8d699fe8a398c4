using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>
/// Downloads what a pipeline needs from a Hugging Face model repository (see <see cref="PipelineFileSelector"/>) into
/// the Hugging Face cache layout (see <see cref="HubRepoCache"/>) and returns the snapshot folder, which
/// <see cref="ModelRepository.Open"/> reads. Offline, or when the endpoint cannot be reached, it answers from the cache
/// alone, or fails at once listing what the cache lacks.
/// </summary>
public sealed class HuggingFaceHubClient : IDisposable
{
    public const string DefaultRevision = "main";

    private readonly HubHttp _http;
    private readonly BlobDownloader _downloader;
    private readonly ILogger _logger;
    private int _symlinkWarningLogged;

    public HuggingFaceHubClient(HubOptions? options = null, ILogger<HuggingFaceHubClient>? logger = null)
    {
        Options = options ?? HubOptions.FromEnvironment();
        _logger = logger ?? NullLogger<HuggingFaceHubClient>.Instance;
        _http = new HubHttp(Options);
        _downloader = new BlobDownloader(_http, Options, _logger);
    }

    public HubOptions Options { get; }

    /// <summary>
    /// The snapshot of <paramref name="repoId"/> at <paramref name="revision"/> (a branch, tag or commit) with the files a
    /// pipeline needs, the <paramref name="variant"/> weights (such as <c>fp16</c>) instead of the full ones where a
    /// component has them.
    /// </summary>
    /// <exception cref="HubCacheMissException">Offline or unreachable, and the cache lacks files (listed).</exception>
    /// <exception cref="HubRequestException">The Hub refused a request, or a download stayed interrupted.</exception>
    /// <exception cref="HubFileVerificationException">A downloaded file did not match its SHA-256 or size.</exception>
    public async Task<HubSnapshot> DownloadSnapshotAsync(string repoId, string revision = DefaultRevision, string? variant = null,
        IProgress<DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        HubRepoCache.Validate(repoId, revision);
        var cache = new HubRepoCache(Options.CacheDirectory, repoId);
        if (Options.Offline)
            return FromCache(cache, repoId, revision, variant, "offline mode is on (HF_HUB_OFFLINE=1 or --offline)", null);

        RepoListing listing;
        try
        {
            listing = await _http.ListAsync(repoId, revision, cancellationToken).ConfigureAwait(false);
        }
        catch (HubRequestException e) when (e.StatusCode is null)
        {
            var snapshot = FromCache(cache, repoId, revision, variant, $"the Hub at {_http.Endpoint} cannot be reached ({e.Message})", e);
            HubLog.UsingCacheAfterFailure(_logger, repoId, revision, snapshot.Commit, e.Message);
            return snapshot;
        }

        var fetched = await DownloadAsync(cache, repoId, revision, listing, variant, progress, cancellationToken).ConfigureAwait(false);
        // Written last, so a ref only ever names a snapshot that was once complete.
        await cache.WriteRefAsync(revision, listing.Commit, cancellationToken).ConfigureAwait(false);
        string directory = cache.SnapshotFolder(listing.Commit);
        HubLog.SnapshotReady(_logger, repoId, revision, listing.Commit, directory);
        return new HubSnapshot(repoId, revision, listing.Commit, directory, fetched, FromCache: false);
    }

    private HubSnapshot FromCache(HubRepoCache cache, string repoId, string revision, string? variant, string reason, Exception? failure)
    {
        var cached = CachedSnapshot.Inspect(cache, revision, variant);
        if (cached.Commit is null || cached.Missing.Count > 0)
            throw new HubCacheMissException(repoId, revision, cache.RepoFolder, cached.Missing, reason, failure);
        return new HubSnapshot(repoId, revision, cached.Commit, cache.SnapshotFolder(cached.Commit), cached.Files, FromCache: true);
    }

    private async Task<IReadOnlyList<string>> DownloadAsync(HubRepoCache cache, string repoId, string revision, RepoListing listing, string? variant,
        IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        var available = new HashSet<string>(listing.Files, StringComparer.Ordinal);
        ModelIndex? index = null;
        if (available.Contains(ModelRepository.ModelIndexFile))
            index = ModelIndex.Read(await FetchAsync(cache, repoId, listing.Commit, ModelRepository.ModelIndexFile, progress, cancellationToken).ConfigureAwait(false));
        else if (!available.Contains(ModelComponent.ConfigFile))
            throw new ModelConfigException($"{repoId}@{listing.Commit}",
                $"neither {ModelRepository.ModelIndexFile} (a pipeline) nor {ModelComponent.ConfigFile} (a single model) is at the repository root.");

        var needed = new List<string>();
        var weightIndexes = new List<string>();
        foreach (string folder in PipelineFileSelector.Folders(index))
        {
            string prefix = folder.Length == 0 ? "" : folder + "/";
            var names = listing.Files.Where(f => f.StartsWith(prefix, StringComparison.Ordinal) && f.IndexOf('/', prefix.Length) < 0)
                .Select(f => f[prefix.Length..]).ToArray();
            var selection = PipelineFileSelector.Select(names, variant);
            if (selection.VariantMissing)
                HubLog.VariantMissing(_logger, repoId, variant!, folder.Length == 0 ? "the root" : folder);
            needed.AddRange(selection.Files.Where(f => f != selection.WeightIndex).Select(f => prefix + f));
            if (selection.WeightIndex is { } weightIndex)
                weightIndexes.Add(prefix + weightIndex);
        }

        // Shards are known once their index is read.
        await ForEachAsync(weightIndexes, async (path, token) =>
        {
            string local = await FetchAsync(cache, repoId, listing.Commit, path, progress, token).ConfigureAwait(false);
            string prefix = path.Contains('/') ? path[..(path.LastIndexOf('/') + 1)] : "";
            foreach (string shard in PipelineFileSelector.ShardsOf(local, $"{repoId}/{path}"))
            {
                if (!available.Contains(prefix + shard))
                    throw new ModelConfigException($"{repoId}/{path}", $"the index names the shard '{shard}', which the repository does not have.");
                lock (needed)
                    needed.Add(prefix + shard);
            }
        }, cancellationToken).ConfigureAwait(false);

        var remaining = needed.Distinct().ToArray();
        var all = remaining.Concat(weightIndexes).Concat(index is null ? [] : [ModelRepository.ModelIndexFile]).Order(StringComparer.Ordinal).ToArray();
        HubLog.Listed(_logger, repoId, revision, listing.Commit, listing.Files.Count, all.Length);
        await ForEachAsync(remaining, async (path, token) => { await FetchAsync(cache, repoId, listing.Commit, path, progress, token).ConfigureAwait(false); }, cancellationToken)
            .ConfigureAwait(false);
        return all;
    }

    /// <summary>Makes <c>snapshots/{commit}/{path}</c> point at the file's verified blob and returns its path.</summary>
    private async Task<string> FetchAsync(HubRepoCache cache, string repoId, string commit, string path, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        string pointer = cache.PointerPath(commit, path);
        // Pointers appear only once their blob is verified, and a commit's files never change.
        if (HubRepoCache.IsPresent(pointer))
            return pointer;

        var file = await _http.GetMetadataAsync(repoId, commit, path, cancellationToken).ConfigureAwait(false);
        string blob = await _downloader.EnsureBlobAsync(cache, repoId, file, progress, cancellationToken).ConfigureAwait(false);
        if (!HubRepoCache.LinkPointer(blob, pointer) && Interlocked.Exchange(ref _symlinkWarningLogged, 1) == 0)
            HubLog.SymlinksUnsupported(_logger, cache.CacheDirectory);
        return pointer;
    }

    private Task ForEachAsync(IEnumerable<string> paths, Func<string, CancellationToken, ValueTask> body, CancellationToken cancellationToken) =>
        Parallel.ForEachAsync(paths, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Options.MaxParallelDownloads), CancellationToken = cancellationToken }, body);

    public void Dispose() => _http.Dispose();
}
