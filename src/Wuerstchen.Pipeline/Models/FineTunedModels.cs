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

/// <summary>
/// Fine-tuned Stage C versions as generation models. A version lives in the blob store in the published layout
/// (<c>models/{id}/prior/</c> with the EMA weights, <c>models/{id}/prior-raw/</c> with the raw ones, each a
/// <c>config.json</c> and <c>diffusion_pytorch_model.safetensors</c>). The name <c>finetuned/{id}</c> (or
/// <c>finetuned/{id}/raw</c>) is materialised once into a prior pipeline folder under
/// <c>{cache root}/{store}/finetuned/{id}/{ema|raw}</c> (the cache root is writable, unlike a mounted model root; the
/// store's hash keeps versions of different stores apart): the version's prior (checksums verified) beside links to
/// its base prior's text encoder, tokenizer and scheduler.
/// </summary>
public sealed class FineTunedModels(IBlobStore store, IOptions<ModelOptions> options)
{
    public const string NamePrefix = "finetuned/";
    public const string EmaFolder = "prior";
    public const string RawFolder = "prior-raw";
    public const string WeightsFile = "diffusion_pytorch_model.safetensors";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

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
        string cache = options.Value.CacheRoot is { Length: > 0 } root ? root : Path.Combine(Path.GetTempPath(), "wuerstchen-models");
        string storeKey = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(store.Description)))[..12];
        return Path.Combine(Path.GetFullPath(cache), storeKey, "finetuned", versionId, raw ? "raw" : "ema");
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
    public string? TryLocal(string name) =>
        TryParse(name, out string id, out bool raw) && IsModelFolder(LocalFolder(id, raw)) ? LocalFolder(id, raw) : null;

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
            return target;
        var version = GetAsync(id, CancellationToken.None).GetAwaiter().GetResult()
                      ?? throw new UnknownModelException(name, [VersionBlob(id) + " in " + store.Description]);
        string baseFolder = Path.GetFullPath(resolveBase(version.BasePrior));
        var baseRepository = ModelRepository.Open(baseFolder);
        if (baseRepository.Index is null)
            throw new ModelConfigException(baseFolder, $"the base prior of {name} is not a pipeline folder.");

        string parent = Path.GetDirectoryName(target)!;
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(target)}.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(temp);
        try
        {
            File.Copy(Path.Combine(baseFolder, ModelRepository.ModelIndexFile), Path.Combine(temp, ModelRepository.ModelIndexFile));
            foreach (string component in baseRepository.Index.Components.Keys.Where(c => c != "prior"))
            {
                string source = baseRepository.Component(component).Directory;
                Directory.CreateSymbolicLink(Path.Combine(temp, component), Directory.ResolveLinkTarget(source, returnFinalTarget: true)?.FullName ?? source);
            }
            string folder = raw ? RawFolder : EmaFolder;
            Directory.CreateDirectory(Path.Combine(temp, "prior"));
            foreach (string file in new[] { ModelComponent.ConfigFile, WeightsFile })
                Download(version, $"{folder}/{file}", Path.Combine(temp, "prior", file));
            try
            {
                Directory.Move(temp, target);
            }
            catch (IOException) when (IsModelFolder(target))
            {
                // Another caller materialised it first; theirs is the same content.
            }
            return target;
        }
        finally
        {
            if (Directory.Exists(temp))
                Directory.Delete(temp, recursive: true);
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
