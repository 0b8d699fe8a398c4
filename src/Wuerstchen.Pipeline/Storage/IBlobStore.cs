namespace Wuerstchen.Pipeline.Storage;

/// <summary>
/// Where latents, images, manifests, datasets and checkpoints live: Azure Blob Storage in the cloud, a folder locally.
/// Names are relative paths with '/' separators (<c>generations/abc/stage-c.safetensors</c>). Every write is atomic:
/// a reader sees the previous content or the new one, never part of a blob.
/// </summary>
public interface IBlobStore
{
    /// <summary>Where the store points, for logs and errors (a folder path or a container URL without credentials).</summary>
    string Description { get; }

    Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Size, content type, metadata and version of a blob; null when it does not exist.</summary>
    Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores the whole of <paramref name="content"/> under <paramref name="name"/> atomically. With
    /// <see cref="BlobWriteOptions.Overwrite"/> false an existing blob is left alone and <see cref="BlobAlreadyExistsException"/> is thrown.
    /// </summary>
    Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default);

    /// <summary>Opens a blob for reading; <see cref="BlobNotFoundException"/> when it does not exist.</summary>
    Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Deletes a blob; false when there was none.</summary>
    Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Every blob whose name starts with <paramref name="prefix"/>, in name order.</summary>
    IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>
    /// One page of the blobs under <paramref name="prefix"/> in name order: at most <paramref name="pageSize"/>, from
    /// where <paramref name="continuationToken"/> (null for the first page) left off, so that a deep page costs no
    /// more than the first. This default walks the listing from the start; the stores override it with their own paging.
    /// </summary>
    async Task<BlobListPage> ListPageAsync(string prefix, int pageSize, string? continuationToken, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var items = new List<BlobItemInfo>(pageSize);
        await foreach (var item in ListAsync(prefix, cancellationToken).ConfigureAwait(false))
        {
            if (continuationToken is not null && string.CompareOrdinal(item.Name, continuationToken) <= 0)
                continue;
            if (items.Count == pageSize)
                return new BlobListPage(items, items[^1].Name);
            items.Add(item);
        }
        return new BlobListPage(items, null);
    }

    /// <summary>A read-only link that expires after <paramref name="lifetime"/>, or null where the store cannot make one.</summary>
    Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default);
}

public sealed record BlobWriteOptions
{
    public string? ContentType { get; init; }

    /// <summary>Small descriptive values (any Unicode; stores that only take ASCII encode them transparently).</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }

    public bool Overwrite { get; init; } = true;
}

/// <summary>A page of a listing; <see cref="ContinuationToken"/> is null on the last page.</summary>
public sealed record BlobListPage(IReadOnlyList<BlobItemInfo> Items, string? ContinuationToken);

public sealed record BlobItemInfo(string Name, long Size, string? ContentType, IReadOnlyDictionary<string, string> Metadata, DateTimeOffset LastModified, string ETag);

public sealed class BlobNotFoundException(string store, string name)
    : Exception($"Blob '{name}' does not exist in {store}.")
{
    public string Name { get; } = name;
}

public sealed class BlobAlreadyExistsException(string store, string name)
    : Exception($"Blob '{name}' already exists in {store}.")
{
    public string Name { get; } = name;
}
