using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Functions.Tests.Reliability;

/// <summary>
/// A blob store that fails a share of its operations as a storage outage would. Each decision is a hash of the seed,
/// the operation, the blob and how often that operation on that blob has been tried, so a run injects the same faults
/// whatever order concurrent activities reach the store in. Half of the failed writes fail after the write went
/// through (the caller cannot tell whether it landed), the other half before.
/// </summary>
public sealed class FaultyStore(IBlobStore inner, ulong seed, double rate) : IBlobStore
{
    private readonly Dictionary<string, int> _tries = new(StringComparer.Ordinal);
    private int _injected;
    private int _operations;

    public int Injected => _injected;
    public int Operations => _operations;

    /// <summary>While false, nothing fails (for setting up and for reading the outcome).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Wraps the registered store; the instance is the environment's <c>Store</c>.</summary>
    public static void Install(IServiceCollection services, ulong seed, double rate)
    {
        var original = services.Single(d => d.ServiceType == typeof(IBlobStore));
        services.Remove(original);
        services.AddSingleton<IBlobStore>(provider => new FaultyStore((IBlobStore)original.ImplementationFactory!(provider), seed, rate));
    }

    private (bool Fail, bool AfterWrite) Draw(string operation, string name)
    {
        Interlocked.Increment(ref _operations);
        if (!Enabled || name.EndsWith("progress.json", StringComparison.Ordinal))
            return (false, false);
        int attempt;
        lock (_tries)
        {
            string key = operation + " " + name;
            attempt = _tries[key] = _tries.GetValueOrDefault(key) + 1;
        }
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes($"{seed}/{operation}/{name}/{attempt}"));
        double draw = BitConverter.ToUInt64(hash) / (double)ulong.MaxValue;
        if (draw >= rate)
            return (false, false);
        Interlocked.Increment(ref _injected);
        return (true, hash[8] % 2 == 0);
    }

    private static IOException Fault(string operation, string name) => new($"Injected storage fault: {operation} '{name}'.");

    public string Description => inner.Description;

    public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default) =>
        Draw("exists", name).Fail ? throw Fault("exists", name) : inner.ExistsAsync(name, cancellationToken);

    public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default) =>
        Draw("info", name).Fail ? throw Fault("info", name) : inner.GetInfoAsync(name, cancellationToken);

    public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default) =>
        Draw("read", name).Fail ? throw Fault("read", name) : inner.OpenReadAsync(name, cancellationToken);

    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) =>
        Draw("delete", name).Fail ? throw Fault("delete", name) : inner.DeleteAsync(name, cancellationToken);

    public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default) =>
        inner.GetReadUriAsync(name, lifetime, cancellationToken);

    public async Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        var (fail, afterWrite) = Draw("write", name);
        if (fail && !afterWrite)
            throw Fault("write", name);
        await inner.WriteAsync(name, content, options, cancellationToken).ConfigureAwait(false);
        if (fail)
            throw Fault("write (after it landed)", name);
    }

    public async IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        if (Draw("list", prefix).Fail)
            throw Fault("list", prefix);
        await foreach (var item in inner.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
            yield return item;
    }
}
