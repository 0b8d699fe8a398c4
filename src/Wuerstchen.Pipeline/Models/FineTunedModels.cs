using System.Text.Json;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Loading;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Pipeline.Models;

/// <summary>
/// A published fine-tune (<c>models/{versionId}/version.json</c>): which base prior and dataset version it was
/// trained from, with which recipe and for how many steps, and the checksums of its files.
/// </summary>
public sealed record ModelVersion
{
    public required string VersionId { get; init; }

    /// <summary>The model name generation requests use for the EMA weights: <c>finetuned/{versionId}</c>.</summary>
    public required string Name { get; init; }

    /// <summary>The model name of the raw (non-EMA) weights: <c>finetuned/{versionId}/raw</c>.</summary>
    public required string RawName { get; init; }

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

    /// <summary>Every published file (relative to <c>models/{versionId}/</c>) with its size and sha256.</summary>
    public required IReadOnlyList<CheckpointFile> Files { get; init; }
}

/// <summary>The model cache cannot take a version without evicting one that is in use (or the version alone exceeds it).</summary>
public sealed class ModelCacheFullException(string message) : IOException(message);

/// <summary>
/// Fine-tuned Stage C versions as generation models. A version lives in the blob store in the published layout
/// (<c>models/{id}/prior/</c> with the EMA weights, <c>models/{id}/prior-raw/</c> with the raw ones, each a
/// <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>). The name <c>finetuned/{id}</c> (or
/// <c>finetuned/{id}/raw</c>) is materialised once into a prior pipeline folder under
/// <c>{cache root}/{store}/finetuned/{id}/{ema|raw}</c> (the cache root is writable, unlike a mounted model root; the
/// store's hash keeps versions of different stores apart): the version's prior (checksums verified) beside links to
/// its base prior's text encoder, tokenizer and scheduler. The cache is bounded by <see cref="ModelOptions.CacheMaxGiB"/>:
/// materialising evicts the least recently used versions first, never one used within <see cref="EvictionGrace"/>
/// (it may be loading).
/// </summary>
public sealed class FineTunedModels(IBlobStore store, IOptions<ModelOptions> options)
{
    public const string NamePrefix = "finetuned/";
    public const string EmaFolder = "prior";
    public const string RawFolder = "prior-raw";
    public const string WeightsFile = "diffusion_pytorch_model.safetensors";

    private const double GiB = 1024d * 1024 * 1024;

    /// <summary>A version used more recently than this is never evicted: a load from its folder may be under way.</summary>
    public static readonly TimeSpan EvictionGrace = TimeSpan.FromMinutes(2);

    /// <summary>Left-over download folders (a process that died mid-download) older than this are removed.</summary>
    private static readonly TimeSpan StaleTemporary = TimeSpan.FromHours(1);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>Materialising and evicting are serialised in the process, so one never deletes what the other measured.</summary>
    private static readonly object CacheGate = new();

    public static string NameOf(string versionId) => NamePrefix + versionId;

    public static string RawNameOf(string versionId) => NamePrefix + versionId + "/raw";

    public static string VersionBlob(string versionId) => $"models/{versionId}/version.json";

    public static string FileBlob(string versionId, string file) => $"models/{versionId}/{file}";

    /// <summary>Splits <c>finetuned/{id}</c> or <c>finetuned/{id}/raw</c>.</summary>
    public static bool TryParse(string name, out string versionId, out bool raw)
    {
        versionId = "";
        raw = false;
        if (!name.StartsWith(NamePrefix, StringComparison.Ordinal))
            return false;
        string rest = name[NamePrefix.Length..];
        if (rest.EndsWith("/raw", StringComparison.Ordinal))
        {
            raw = true;
            rest = rest[..^"/raw".Length];
        }
        versionId = rest;
        return FineTuneRequestValidator.IsValidRunId(rest);
    }

    /// <summary>The folder a version name materialises into.</summary>
    public string LocalFolder(string versionId, bool raw)
    {
        string storeKey = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(store.Description)))[..12];
        return Path.Combine(CacheDirectory, storeKey, "finetuned", versionId, raw ? "raw" : "ema");
    }

    /// <summary>The cache's folder: <see cref="ModelOptions.CacheRoot"/>, or <c>wuerstchen-models</c> in the temp folder.</summary>
    public string CacheDirectory =>
        Path.GetFullPath(options.Value.CacheRoot is { Length: > 0 } root ? root : Path.Combine(Path.GetTempPath(), "wuerstchen-models"));

    /// <summary>A materialised version in the cache: its folder, the bytes of its own files (not the linked base components), when it was last used.</summary>
    public sealed record CachedVersion(string Folder, long Bytes, DateTime LastUsedUtc);

    /// <summary>Every materialised version in the cache (of any store), least recently used first.</summary>
    public IReadOnlyList<CachedVersion> CachedVersions()
    {
        if (!Directory.Exists(CacheDirectory))
            return [];
        var skipLinks = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
        return Directory.EnumerateDirectories(CacheDirectory)
            .Select(storeFolder => Path.Combine(storeFolder, "finetuned"))
            .Where(Directory.Exists)
            .SelectMany(Directory.EnumerateDirectories)
            .SelectMany(version => new[] { Path.Combine(version, "ema"), Path.Combine(version, "raw") })
            .Where(IsModelFolder)
            .Select(folder => new CachedVersion(folder,
                new DirectoryInfo(folder).EnumerateFiles("*", skipLinks).Sum(f => f.Length),
                Directory.GetLastWriteTimeUtc(folder)))
            .OrderBy(v => v.LastUsedUtc)
            .ToArray();
    }

    public async Task<ModelVersion?> GetAsync(string versionId, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await store.OpenReadAsync(VersionBlob(versionId), cancellationToken).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync<ModelVersion>(stream, Json, cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
            return null;
        }
    }

    /// <summary>Every published version, newest first.</summary>
    public async Task<IReadOnlyList<ModelVersion>> ListAsync(CancellationToken cancellationToken)
    {
        var versions = new List<ModelVersion>();
        await foreach (var blob in store.ListAsync("models/", cancellationToken).ConfigureAwait(false))
        {
            string[] parts = blob.Name.Split('/');
            if (parts.Length == 3 && parts[2] == "version.json" && await GetAsync(parts[1], cancellationToken).ConfigureAwait(false) is { } version)
                versions.Add(version);
        }
        return versions.OrderByDescending(v => v.CreatedAt).ThenBy(v => v.VersionId, StringComparer.Ordinal).ToArray();
    }

    public async Task WriteVersionAsync(ModelVersion version, CancellationToken cancellationToken)
    {
        using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(version, Json));
        await store.WriteAsync(VersionBlob(version.VersionId), content, new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether a version name is published (checked in the store; nothing is downloaded).</summary>
    public bool Exists(string name) =>
        TryParse(name, out string id, out bool raw) &&
        (IsModelFolder(LocalFolder(id, raw)) || store.ExistsAsync(VersionBlob(id)).GetAwaiter().GetResult());

    /// <summary>The local folder of a version that is already materialised; null otherwise.</summary>
    public string? TryLocal(string name)
    {
        if (!TryParse(name, out string id, out bool raw) || LocalFolder(id, raw) is not { } folder || !IsModelFolder(folder))
            return null;
        Touch(folder);
        return folder;
    }

    /// <summary>
    /// Materialises a version name into its local prior pipeline folder (once; later calls find it) and returns the
    /// folder. <paramref name="resolveBase"/> resolves the version's base prior. Synchronous, as model resolution is:
    /// it runs where the model is about to load, off any request path that could deadlock.
    /// </summary>
    public string Materialise(string name, Func<string, string> resolveBase)
    {
        if (!TryParse(name, out string id, out bool raw))
            throw new ArgumentException($"'{name}' is not a fine-tuned model name ({NamePrefix}{{versionId}}[/raw]).", nameof(name));
        string target = LocalFolder(id, raw);
        if (IsModelFolder(target))
        {
            Touch(target);
            return target;
        }
        var version = GetAsync(id, CancellationToken.None).GetAwaiter().GetResult()
                      ?? throw new UnknownModelException(name, [VersionBlob(id) + " in " + store.Description]);
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
            string folder = raw ? RawFolder : EmaFolder;
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
        string version = Path.GetDirectoryName(folder)!;
        if (!Directory.EnumerateFileSystemEntries(version).Any())
            Directory.Delete(version);
    }

    private void RemoveStaleTemporaries()
    {
        if (!Directory.Exists(CacheDirectory))
            return;
        var leftovers = Directory.EnumerateDirectories(CacheDirectory)
            .Select(storeFolder => Path.Combine(storeFolder, "finetuned"))
            .Where(Directory.Exists)
            .SelectMany(Directory.EnumerateDirectories)
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
                       ?? throw new InvalidDataException($"Version {version.VersionId} lists no {relative}.");
        using (var source = store.OpenReadAsync(FileBlob(version.VersionId, relative)).GetAwaiter().GetResult())
        using (var target = File.Create(path))
            source.CopyTo(target);
        string actual;
        using (var check = File.OpenRead(path))
            actual = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(check));
        if (actual != expected.Sha256)
            throw new InvalidDataException($"{relative} of version {version.VersionId} fails its checksum (sha256 {actual[..12]}…, published {expected.Sha256[..12]}…).");
    }

    private static bool IsModelFolder(string path) => File.Exists(Path.Combine(path, ModelRepository.ModelIndexFile));
}
