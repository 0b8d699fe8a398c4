using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Loading;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Pipeline.Models;

/// <summary>
/// One published revision of a fine-tune (<c>models/{versionId}/revisions/{revision}/version.json</c>): which base
/// prior and dataset version it was trained from, with which recipe and for how many steps, and the checksums of its
/// files. A revision never changes once written.
/// </summary>
public sealed record ModelVersion
{
    public required string VersionId { get; init; }

    /// <summary><c>rev-</c> and the first 12 hex digits of the sha256 over its files' checksums: the same weights, the same revision.</summary>
    public required string Revision { get; init; }

    /// <summary>The name that follows the newest revision (EMA weights): <c>finetuned/{versionId}</c>.</summary>
    public string Name => new FineTunedName(VersionId, null, false).ToString();

    /// <summary>The name that follows the newest revision's raw (non-EMA) weights: <c>finetuned/{versionId}/raw</c>.</summary>
    public string RawName => new FineTunedName(VersionId, null, true).ToString();

    /// <summary>This revision's EMA weights, for good: <c>finetuned/{versionId}/{revision}</c>.</summary>
    public string RevisionName => new FineTunedName(VersionId, Revision, false).ToString();

    /// <summary>This revision's raw weights: <c>finetuned/{versionId}/{revision}/raw</c>.</summary>
    public string RawRevisionName => new FineTunedName(VersionId, Revision, true).ToString();

    public required string BasePrior { get; init; }
    public required string RunId { get; init; }
    public required DatasetLocation Dataset { get; init; }
    public required string DatasetKey { get; init; }
    public required string DatasetVersion { get; init; }
    public required int DatasetItems { get; init; }
    public required TrainingRecipe Recipe { get; init; }
    public required int Steps { get; init; }
    public double? FinalLoss { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Every published file (relative to the revision's folder) with its size and sha256.</summary>
    public required IReadOnlyList<CheckpointFile> Files { get; init; }
}

/// <summary>A version and the revisions it has, newest first (the first is the one <see cref="ModelVersion.Name"/> follows).</summary>
public sealed record PublishedModel(ModelVersion Latest, IReadOnlyList<ModelVersion> Revisions);

/// <summary>Which revision <c>finetuned/{id}</c> follows: <c>models/{id}/latest.json</c>, written after the revision is complete.</summary>
public sealed record LatestRevision(string Revision, DateTimeOffset PublishedAt);

/// <summary>A parsed fine-tuned model name: <c>finetuned/{versionId}[/{revision}][/raw]</c>.</summary>
public sealed record FineTunedName(string VersionId, string? Revision, bool Raw)
{
    public override string ToString() =>
        FineTunedModels.NamePrefix + VersionId + (Revision is null ? "" : "/" + Revision) + (Raw ? "/raw" : "");
}

/// <summary>The model cache cannot take a version without evicting one that is in use (or the version alone exceeds it).</summary>
public sealed class ModelCacheFullException(string message) : IOException(message);

/// <summary>
/// Fine-tuned Stage C versions as generation models. Each publication of a run is an immutable, content-addressed
/// revision in the blob store (<c>models/{id}/revisions/{rev}/prior/</c> with the EMA weights, <c>…/prior-raw/</c>
/// with the raw ones, each a <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>, then
/// <c>version.json</c>), and <c>models/{id}/latest.json</c> names the newest. <c>finetuned/{id}</c> resolves to the
/// newest revision when a request arrives (<see cref="PinAsync"/>), so the request's recipe, its blob keys and the
/// resident model all carry <c>finetuned/{id}/{rev}</c>; a revision name (EMA or <c>/raw</c>) is materialised once
/// into a prior pipeline folder under <c>{cache root}/{store}/finetuned/{id}/{rev}/{ema|raw}</c> (the cache root is
/// writable, unlike a mounted model root; the store's hash keeps versions of different stores apart): the revision's
/// prior (checksums verified) beside links to its base prior's text encoder, tokenizer and scheduler. Nothing of a
/// revision is rewritten, so a reader never pairs one revision's description with another's files. The cache is
/// bounded by <see cref="ModelOptions.CacheMaxGiB"/>: materialising evicts the least recently used revisions first,
/// never one used within <see cref="EvictionGrace"/> (it may be loading).
/// </summary>
public sealed partial class FineTunedModels(IBlobStore store, IOptions<ModelOptions> options)
{
    public const string NamePrefix = "finetuned/";
    public const string EmaFolder = "prior";
    public const string RawFolder = "prior-raw";
    public const string WeightsFile = "diffusion_pytorch_model.safetensors";
    public const string RevisionPrefix = "rev-";

    private const double GiB = 1024d * 1024 * 1024;

    /// <summary>A version used more recently than this is never evicted: a load from its folder may be under way.</summary>
    public static readonly TimeSpan EvictionGrace = TimeSpan.FromMinutes(2);

    /// <summary>Left-over download folders (a process that died mid-download) older than this are removed.</summary>
    private static readonly TimeSpan StaleTemporary = TimeSpan.FromHours(1);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Materialising and evicting are serialised in the process, so one never deletes what the other measured.</summary>
    private static readonly object CacheGate = new();

    [GeneratedRegex("^rev-[0-9a-f]{12}$")]
    private static partial Regex RevisionPattern();

    public static bool IsRevision(string? value) => value is not null && RevisionPattern().IsMatch(value);

    /// <summary>The revision of a set of published files: the same files, the same revision.</summary>
    public static string RevisionOf(IEnumerable<CheckpointFile> files) =>
        RevisionPrefix + TrainingHashes.Of(string.Join("\n", files.OrderBy(f => f.Name, StringComparer.Ordinal).Select(f => $"{f.Name} {f.Sha256}")))[..12];

    public static string LatestBlob(string versionId) => $"models/{versionId}/latest.json";

    public static string RevisionsPrefix(string versionId) => $"models/{versionId}/revisions/";

    public static string VersionBlob(string versionId, string revision) => $"{RevisionsPrefix(versionId)}{revision}/version.json";

    public static string FileBlob(string versionId, string revision, string file) => $"{RevisionsPrefix(versionId)}{revision}/{file}";

    /// <summary>Splits <c>finetuned/{id}[/{revision}][/raw]</c>.</summary>
    public static bool TryParse(string? name, out FineTunedName parsed)
    {
        parsed = new FineTunedName("", null, false);
        if (name is null || !name.StartsWith(NamePrefix, StringComparison.Ordinal))
            return false;
        var parts = name[NamePrefix.Length..].Split('/');
        bool raw = parts.Length > 1 && parts[^1] == "raw";
        int count = parts.Length - (raw ? 1 : 0);
        if (count is < 1 or > 2 || !FineTuneRequestValidator.IsValidRunId(parts[0]) || (count == 2 && !IsRevision(parts[1])))
            return false;
        parsed = new FineTunedName(parts[0], count == 2 ? parts[1] : null, raw);
        return true;
    }

    /// <summary>The folder a revision materialises into.</summary>
    public string LocalFolder(string versionId, string revision, bool raw)
    {
        string storeKey = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(store.Description)))[..12];
        return Path.Combine(CacheDirectory, storeKey, "finetuned", versionId, revision, raw ? "raw" : "ema");
    }

    /// <summary>The cache's folder: <see cref="ModelOptions.CacheRoot"/>, or <c>wuerstchen-models</c> in the temp folder.</summary>
    public string CacheDirectory =>
        Path.GetFullPath(options.Value.CacheRoot is { Length: > 0 } root ? root : Path.Combine(Path.GetTempPath(), "wuerstchen-models"));

    /// <summary>A materialised revision in the cache: its folder, the bytes of its own files (not the linked base components), when it was last used.</summary>
    public sealed record CachedVersion(string Folder, long Bytes, DateTime LastUsedUtc);

    /// <summary>The revision folders of the cache (<c>{store}/finetuned/{id}/{rev}</c>, of any store).</summary>
    private IEnumerable<string> RevisionFolders() =>
        !Directory.Exists(CacheDirectory) ? [] : Directory.EnumerateDirectories(CacheDirectory)
            .Select(storeFolder => Path.Combine(storeFolder, "finetuned"))
            .Where(Directory.Exists)
            .SelectMany(Directory.EnumerateDirectories)
            .SelectMany(Directory.EnumerateDirectories);

    /// <summary>Every materialised revision in the cache (of any store), least recently used first.</summary>
    public IReadOnlyList<CachedVersion> CachedVersions()
    {
        var skipLinks = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
        return RevisionFolders()
            .SelectMany(revision => new[] { Path.Combine(revision, "ema"), Path.Combine(revision, "raw") })
            .Where(IsModelFolder)
            .Select(folder => new CachedVersion(folder,
                new DirectoryInfo(folder).EnumerateFiles("*", skipLinks).Sum(f => f.Length),
                Directory.GetLastWriteTimeUtc(folder)))
            .OrderBy(v => v.LastUsedUtc)
            .ToArray();
    }

    /// <summary>The revision <c>finetuned/{id}</c> follows now; null when the version was never published.</summary>
    public Task<LatestRevision?> GetLatestAsync(string versionId, CancellationToken cancellationToken) =>
        BlobJson.TryReadAsync<LatestRevision>(store, LatestBlob(versionId), cancellationToken);

    /// <summary>A revision's description (the newest when <paramref name="revision"/> is null); null when there is none.</summary>
    public async Task<ModelVersion?> GetAsync(string versionId, string? revision, CancellationToken cancellationToken)
    {
        revision ??= (await GetLatestAsync(versionId, cancellationToken).ConfigureAwait(false))?.Revision;
        if (revision is null)
            return null;
        try
        {
            await using var stream = await store.OpenReadAsync(VersionBlob(versionId, revision), cancellationToken).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync<ModelVersion>(stream, Json, cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// A fine-tuned name with its revision: <c>finetuned/{id}</c> becomes <c>finetuned/{id}/{newest revision}</c>
    /// (and <c>/raw</c> likewise). Any other name, a name that already has its revision, or a version never
    /// published, is returned as it is (validation then reports an unknown model).
    /// </summary>
    public async Task<string> PinAsync(string name, CancellationToken cancellationToken)
    {
        if (!TryParse(name, out var parsed) || parsed.Revision is not null)
            return name;
        var latest = await GetLatestAsync(parsed.VersionId, cancellationToken).ConfigureAwait(false);
        return latest is null ? name : (parsed with { Revision = latest.Revision }).ToString();
    }

    /// <summary><see cref="PinAsync"/> for synchronous callers (model resolution, which runs where a model is about to load).</summary>
    public string Pin(string name) => PinAsync(name, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>Every published version with its revisions, the most recently published first.</summary>
    public async Task<IReadOnlyList<PublishedModel>> ListAsync(CancellationToken cancellationToken)
    {
        var revisions = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        await foreach (var blob in store.ListAsync("models/", cancellationToken).ConfigureAwait(false))
        {
            string[] parts = blob.Name.Split('/');
            if (parts.Length == 5 && parts[2] == "revisions" && parts[4] == "version.json" && IsRevision(parts[3]))
            {
                if (!revisions.TryGetValue(parts[1], out var list))
                    revisions[parts[1]] = list = [];
                list.Add(parts[3]);
            }
        }
        var published = new List<PublishedModel>();
        foreach (var (versionId, names) in revisions)
        {
            var latest = await GetLatestAsync(versionId, cancellationToken).ConfigureAwait(false);
            if (latest is null)
                continue; // a revision still being published, before its first pointer
            var all = new List<ModelVersion>();
            foreach (string revision in names)
            {
                if (await GetAsync(versionId, revision, cancellationToken).ConfigureAwait(false) is { } version)
                    all.Add(version);
            }
            var newest = all.FirstOrDefault(v => v.Revision == latest.Revision);
            if (newest is null)
                continue;
            published.Add(new PublishedModel(newest, all.OrderByDescending(v => v.Revision == latest.Revision).ThenByDescending(v => v.CreatedAt).ToArray()));
        }
        return published.OrderByDescending(p => p.Latest.CreatedAt).ThenBy(p => p.Latest.VersionId, StringComparer.Ordinal).ToArray();
    }

    /// <summary>
    /// Writes a revision's description (its files are already in place) unless that revision exists, then points
    /// <c>finetuned/{id}</c> at it. Returns the revision as stored (an existing one keeps its first description).
    /// </summary>
    public async Task<ModelVersion> PublishAsync(ModelVersion version, CancellationToken cancellationToken)
    {
        string blob = VersionBlob(version.VersionId, version.Revision);
        var existing = await GetAsync(version.VersionId, version.Revision, cancellationToken).ConfigureAwait(false);
        if (existing is null)
        {
            try
            {
                using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(version, Json));
                await store.WriteAsync(blob, content, new BlobWriteOptions { ContentType = "application/json", Overwrite = false }, cancellationToken).ConfigureAwait(false);
                existing = version;
            }
            catch (BlobAlreadyExistsException)
            {
                existing = await GetAsync(version.VersionId, version.Revision, cancellationToken).ConfigureAwait(false) ?? version;
            }
        }
        await BlobJson.WriteAsync(store, LatestBlob(version.VersionId), new LatestRevision(version.Revision, DateTimeOffset.UtcNow), cancellationToken).ConfigureAwait(false);
        return existing;
    }

    /// <summary>Whether a fine-tuned name is published (checked in the store; nothing is downloaded).</summary>
    public bool Exists(string name)
    {
        if (!TryParse(name, out var parsed))
            return false;
        if (parsed.Revision is null)
            return store.ExistsAsync(LatestBlob(parsed.VersionId)).GetAwaiter().GetResult();
        return IsModelFolder(LocalFolder(parsed.VersionId, parsed.Revision, parsed.Raw)) ||
               store.ExistsAsync(VersionBlob(parsed.VersionId, parsed.Revision)).GetAwaiter().GetResult();
    }

    /// <summary>The local folder of a revision that is already materialised (the newest, for a name without one); null otherwise.</summary>
    public string? TryLocal(string name)
    {
        if (!TryParse(Pin(name), out var parsed) || parsed.Revision is null)
            return null;
        string folder = LocalFolder(parsed.VersionId, parsed.Revision, parsed.Raw);
        if (!IsModelFolder(folder))
            return null;
        Touch(folder);
        return folder;
    }

    /// <summary>
    /// Materialises a fine-tuned name (the newest revision, for a name without one) into its local prior pipeline
    /// folder (once; later calls find it) and returns the folder. <paramref name="resolveBase"/> resolves the version's
    /// base prior. Synchronous, as model resolution is: it runs where the model is about to load, off any request
    /// path that could deadlock.
    /// </summary>
    public string Materialise(string name, Func<string, string> resolveBase)
    {
        if (!TryParse(Pin(name), out var parsed))
            throw new ArgumentException($"'{name}' is not a fine-tuned model name ({NamePrefix}{{versionId}}[/{{revision}}][/raw]).", nameof(name));
        var version = (parsed.Revision is null ? null : GetAsync(parsed.VersionId, parsed.Revision, CancellationToken.None).GetAwaiter().GetResult())
                      ?? throw new UnknownModelException(name, [$"{(parsed.Revision is null ? LatestBlob(parsed.VersionId) : VersionBlob(parsed.VersionId, parsed.Revision))} in {store.Description}"]);
        string target = LocalFolder(version.VersionId, version.Revision, parsed.Raw);
        if (IsModelFolder(target))
        {
            Touch(target);
            return target;
        }
        string baseFolder = Path.GetFullPath(resolveBase(version.BasePrior));
        var baseRepository = ModelRepository.Open(baseFolder);
        if (baseRepository.Index is null)
            throw new ModelConfigException(baseFolder, $"the base prior of {name} is not a pipeline folder.");

        lock (CacheGate)
        {
            if (IsModelFolder(target))
            {
                Touch(target);
                return target;
            }
            string folder = parsed.Raw ? RawFolder : EmaFolder;
            long needed = version.Files.Where(f => f.Name.StartsWith(folder + "/", StringComparison.Ordinal)).Sum(f => f.Bytes);
            MakeRoom(name, needed, target);
            return DownloadInto(version, baseFolder, baseRepository, target, folder);
        }
    }

    /// <summary>Evicts least recently used versions until <paramref name="needed"/> more bytes fit under the cache's bound.</summary>
    private void MakeRoom(string name, long needed, string target)
    {
        RemoveStaleTemporaries();
        long limit = (long)(options.Value.CacheMaxGiB * GiB);
        if (needed > limit)
            throw new ModelCacheFullException($"{name} needs {needed / GiB:F2} GiB on disk, more than {ModelOptions.Section}:CacheMaxGiB ({options.Value.CacheMaxGiB} GiB) allows; raise it.");
        var cached = CachedVersions().Where(v => v.Folder != target).ToList();
        long used = cached.Sum(v => v.Bytes);
        var now = DateTime.UtcNow;
        foreach (var victim in cached)
        {
            if (used + needed <= limit || now - victim.LastUsedUtc < EvictionGrace)
                break;
            Evict(victim.Folder);
            used -= victim.Bytes;
        }
        if (used + needed > limit)
            throw new ModelCacheFullException($"{name} needs {needed / GiB:F2} GiB, but the model cache at {CacheDirectory} already holds {used / GiB:F2} GiB " +
                $"of its {options.Value.CacheMaxGiB} GiB ({ModelOptions.Section}:CacheMaxGiB) in versions used within the last {EvictionGrace.TotalMinutes:F0} minutes; try again later or raise the bound.");
    }

    /// <summary>Moves a version out of the way first (a concurrent lookup never sees half of it), then deletes it; links are removed, never followed.</summary>
    private static void Evict(string folder)
    {
        string doomed = Path.Combine(Path.GetDirectoryName(folder)!, $".{Path.GetFileName(folder)}.{Guid.NewGuid():N}.evicted");
        Directory.Move(folder, doomed);
        DeleteTree(doomed);
        // The revision's folder, then the version's, when nothing is left in them.
        string revision = Path.GetDirectoryName(folder)!;
        foreach (string emptied in new[] { revision, Path.GetDirectoryName(revision)! })
        {
            if (Directory.EnumerateFileSystemEntries(emptied).Any())
                break;
            Directory.Delete(emptied);
        }
    }

    private void RemoveStaleTemporaries()
    {
        var leftovers = RevisionFolders()
            .SelectMany(Directory.EnumerateDirectories)
            .Where(d => Path.GetFileName(d).StartsWith('.') && DateTime.UtcNow - Directory.GetLastWriteTimeUtc(d) > StaleTemporary);
        foreach (string leftover in leftovers.ToArray())
            DeleteTree(leftover);
    }

    private static void DeleteTree(string folder)
    {
        foreach (var entry in new DirectoryInfo(folder).EnumerateFileSystemInfos())
        {
            if (entry.LinkTarget is not null || entry is FileInfo)
                File.Delete(entry.FullName);
            else
                DeleteTree(entry.FullName);
        }
        Directory.Delete(folder);
    }

    private static void Touch(string folder)
    {
        try
        {
            Directory.SetLastWriteTimeUtc(folder, DateTime.UtcNow);
        }
        catch (IOException)
        {
            // Evicted in between: the caller's lookup fails on its own and materialises again.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private string DownloadInto(ModelVersion version, string baseFolder, ModelRepository baseRepository, string target, string folder)
    {
        string parent = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        try
        {
            File.Copy(Path.Combine(baseFolder, ModelRepository.ModelIndexFile), Path.Combine(temp, ModelRepository.ModelIndexFile));
            foreach (string component in baseRepository.Index!.Components.Keys.Where(c => c != "prior"))
            {
                string source = baseRepository.Component(component).Directory;
                Directory.CreateSymbolicLink(Path.Combine(temp, component), Directory.ResolveLinkTarget(source, returnFinalTarget: true)?.FullName ?? source);
            }
            Directory.CreateDirectory(Path.Combine(temp, "prior"));
            foreach (string file in new[] { ModelComponent.ConfigFile, WeightsFile })
                Download(version, $"{folder}/{file}", Path.Combine(temp, "prior", file));
            try
            {
                Directory.Move(temp, target);
            }
            catch (IOException) when (IsModelFolder(target))
            {
                // Another process sharing the cache materialised it first; theirs is the same content.
            }
            return target;
        }
        finally
        {
            if (Directory.Exists(temp))
                DeleteTree(temp);
        }
    }

    private void Download(ModelVersion version, string relative, string path)
    {
        var expected = version.Files.FirstOrDefault(f => f.Name == relative)
                       ?? throw new InvalidDataException($"Revision {version.Revision} of {version.VersionId} lists no {relative}.");
        using (var source = store.OpenReadAsync(FileBlob(version.VersionId, version.Revision, relative)).GetAwaiter().GetResult())
        using (var target = File.Create(path))
            source.CopyTo(target);
        string actual;
        using (var check = File.OpenRead(path))
            actual = Convert.ToHexStringLower(SHA256.HashData(check));
        if (actual != expected.Sha256)
            throw new InvalidDataException($"{relative} of {version.VersionId} revision {version.Revision} fails its checksum (sha256 {actual[..12]}…, published {expected.Sha256[..12]}…).");
    }

    private static bool IsModelFolder(string path) => File.Exists(Path.Combine(path, ModelRepository.ModelIndexFile));
}
