using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Functions.Tests;

/// <summary>A store whose every call fails as an unreachable storage service would.</summary>
internal sealed class UnavailableStore : IBlobStore
{
    public string Description => "an unavailable store";
    private static IOException Down() => new("The storage service is unavailable (simulated).");
    public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default) => throw Down();
    public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default) => throw Down();
    public Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default) => throw Down();
    public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default) => throw Down();
    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => throw Down();
    public IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) => throw Down();
    public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default) => throw Down();
}
