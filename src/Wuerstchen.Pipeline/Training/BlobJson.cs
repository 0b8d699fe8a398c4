using System.Text.Json;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Training;

/// <summary>Small JSON documents in the blob store (plans, manifests, reports), in the web (camelCase) form.</summary>
internal static class BlobJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    public static async Task<T> ReadAsync<T>(IBlobStore store, string name, CancellationToken cancellationToken)
    {
        await using var stream = await store.OpenReadAsync(name, cancellationToken).ConfigureAwait(false);
        return await JsonSerializer.DeserializeAsync<T>(stream, Options, cancellationToken).ConfigureAwait(false)
               ?? throw new InvalidDataException($"Blob '{name}' holds JSON null.");
    }

    public static async Task<T?> TryReadAsync<T>(IBlobStore store, string name, CancellationToken cancellationToken) where T : class
    {
        try
        {
            return await ReadAsync<T>(store, name, cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
            return null;
        }
    }

    public static async Task WriteAsync<T>(IBlobStore store, string name, T value, CancellationToken cancellationToken, bool overwrite = true, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(value, Options));
        await store.WriteAsync(name, content, new BlobWriteOptions { ContentType = "application/json", Overwrite = overwrite, Metadata = metadata }, cancellationToken).ConfigureAwait(false);
    }
}
