using System.Net.Sockets;
using Azure.Storage.Blobs;

namespace Wuerstchen.Pipeline.Tests.Storage;

/// <summary>
/// A fresh container in Azurite (<c>UseDevelopmentStorage=true</c>) for one test class, deleted afterwards. Azurite is
/// started by scripts/test.sh, or by hand with scripts/azurite.sh; without it the tests are skipped, except in CI
/// (<c>CI=true</c>), where they fail.
/// </summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public const string ConnectionString = "UseDevelopmentStorage=true";
    private const int BlobPort = 10000;

    private string? _unavailable;

    public BlobServiceClient Service { get; } = new(ConnectionString);

    public BlobContainerClient Container { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync("127.0.0.1", BlobPort).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is SocketException or TimeoutException)
        {
            _unavailable = $"Azurite is not reachable on 127.0.0.1:{BlobPort} ({e.Message}); "
                + "run scripts/test.sh, or start it with `source scripts/azurite.sh && azurite_start /tmp/azurite`.";
            return;
        }

        Container = Service.GetBlobContainerClient($"test-{Guid.NewGuid():N}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_unavailable is null)
        {
            await Container.DeleteIfExistsAsync();
        }
    }

    public void RequireAzurite() => SkipOrFail(_unavailable);

    /// <summary>
    /// Skips the calling test when <paramref name="unavailable"/> says why Azurite cannot serve it, or fails it in CI,
    /// where a skip would go unnoticed.
    /// </summary>
    public static void SkipOrFail(string? unavailable)
    {
        if (unavailable is null)
        {
            return;
        }

        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail($"CI=true and the Azure storage tests cannot run: {unavailable}");
        }

        Assert.Skip(unavailable);
    }
}
