using System.Collections.Concurrent;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Functions.Tests;

/// <summary>Wraps the configured blob store and counts, by operation and blob name, what the app asks of it.</summary>
public sealed class RecordingStore
{
    private readonly ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);

    /// <summary>How often <paramref name="operation"/> (Exists, Read, Write, Delete) was asked of blobs matching <paramref name="matches"/>.</summary>
    public int Count(string operation, Func<string, bool> matches) =>
        _calls.Where(c => c.Key.StartsWith(operation + " ", StringComparison.Ordinal) && matches(c.Key[(operation.Length + 1)..])).Sum(c => c.Value);

    public void Install(IServiceCollection services)
    {
        var original = services.Single(d => d.ServiceType == typeof(IBlobStore));
        services.Remove(original);
        services.AddSingleton<IBlobStore>(provider => new Decorator((IBlobStore)original.ImplementationFactory!(provider), this));
    }

    private void Record(string operation, string name) => _calls.AddOrUpdate($"{operation} {name}", 1, (_, n) => n + 1);

    private sealed class Decorator(IBlobStore inner, RecordingStore owner) : IBlobStore
    {
        public string Description => inner.Description;

        public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default)
        {
            owner.Record("Exists", name);
            return inner.ExistsAsync(name, cancellationToken);
        }

        public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default) => inner.GetInfoAsync(name, cancellationToken);

        public Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default)
        {
            owner.Record("Write", name);
            return inner.WriteAsync(name, content, options, cancellationToken);
        }

        public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default)
        {
            owner.Record("Read", name);
            return inner.OpenReadAsync(name, cancellationToken);
        }

        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default)
        {
            owner.Record("Delete", name);
            return inner.DeleteAsync(name, cancellationToken);
        }

        public IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

        public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default) => inner.GetReadUriAsync(name, lifetime, cancellationToken);
    }
}
