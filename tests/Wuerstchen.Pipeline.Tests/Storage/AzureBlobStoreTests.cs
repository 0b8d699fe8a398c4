using System.Net;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Sas;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Tests.Storage;

public sealed class AzureBlobStoreTests(AzuriteFixture azurite) : BlobStoreContractTests, IClassFixture<AzuriteFixture>
{
    // Small blocks, so the large-blob tests go through Put Block + Put Block List rather than one Put Blob.
    private static readonly StorageTransferOptions SmallBlocks = new() { InitialTransferSize = 1 << 20, MaximumTransferSize = 1 << 20 };

    protected override ValueTask<IBlobStore> CreateStoreAsync()
    {
        azurite.RequireAzurite();
        return ValueTask.FromResult<IBlobStore>(new AzureBlobStore(azurite.Container, SmallBlocks));
    }

    [Fact]
    public async Task ReadLinkDownloadsTheBlobButCannotWriteIt()
    {
        var name = P + "images/würstchen 1.png";
        var content = Payload(20_000, 1);
        await WriteAsync(name, content, new BlobWriteOptions { ContentType = "image/png" });

        var uri = await Store.GetReadUriAsync(name, TimeSpan.FromMinutes(10), Ct);

        Assert.NotNull(uri);
        Assert.Contains("sp=r&", uri.Query + "&");
        using var http = new HttpClient();
        using var get = await http.GetAsync(uri, Ct);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal(content, await get.Content.ReadAsByteArrayAsync(Ct));
        Assert.Equal("image/png", get.Content.Headers.ContentType?.MediaType);

        using var put = new HttpRequestMessage(HttpMethod.Put, uri) { Content = new ByteArrayContent([6, 6, 6]) };
        put.Headers.Add("x-ms-blob-type", "BlockBlob");
        using var putResponse = await http.SendAsync(put, Ct);
        Assert.Equal(HttpStatusCode.Forbidden, putResponse.StatusCode);
        Assert.Equal(content, await ReadAsync(name));
    }

    [Fact]
    public async Task AStoreOnASasAuthorizedClientMakesNoLinksAndHidesTheSas()
    {
        await WriteAsync(P + "a", [1]);
        var sasUri = azurite.Container.GenerateSasUri(BlobContainerSasPermissions.All, DateTimeOffset.UtcNow.AddHours(1));
        var store = new AzureBlobStore(new BlobContainerClient(sasUri));

        Assert.Null(await store.GetReadUriAsync(P + "a", TimeSpan.FromHours(1), Ct));
        Assert.DoesNotContain("sig=", store.Description);
        Assert.Equal(azurite.Container.Uri.ToString(), store.Description);
        Assert.True(await store.ExistsAsync(P + "a", Ct));
    }

    [Fact]
    public async Task AMissingContainerReadsAsEmptyAndIsCreatedByTheFirstWrite()
    {
        var container = azurite.Service.GetBlobContainerClient($"test-{Guid.NewGuid():N}");
        try
        {
            var store = new AzureBlobStore(container);

            Assert.False(await store.ExistsAsync("a", Ct));
            Assert.Null(await store.GetInfoAsync("a", Ct));
            await Assert.ThrowsAsync<BlobNotFoundException>(() => store.OpenReadAsync("a", Ct));
            Assert.False(await store.DeleteAsync("a", Ct));
            await foreach (var _ in store.ListAsync("", Ct))
            {
                Assert.Fail("A missing container lists nothing.");
            }

            await store.WriteAsync("a", new MemoryStream([1, 2]), cancellationToken: Ct);
            Assert.True((await container.ExistsAsync(Ct)).Value);
            Assert.Equal(2, (await store.GetInfoAsync("a", Ct))!.Size);
        }
        finally
        {
            await container.DeleteIfExistsAsync(cancellationToken: Ct);
        }
    }

    [Fact]
    public async Task NonAsciiMetadataIsStoredEncodedAndAsciiAsItIs()
    {
        var name = P + "a";
        await WriteAsync(name, [1], new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["plain"] = "seed=42; steps=60", ["prompt"] = "Würstchen 🌭" } });

        BlobProperties raw = await azurite.Container.GetBlobClient(name).GetPropertiesAsync(cancellationToken: Ct);

        Assert.Equal("seed=42; steps=60", raw.Metadata["plain"]);
        Assert.Equal("~utf8~W%C3%BCrstchen%20%F0%9F%8C%AD", raw.Metadata["prompt"]);
    }

    [Fact]
    public async Task BlockUploadsHonourOverwriteFalse()
    {
        var name = P + "checkpoint.safetensors";
        await Store.WriteAsync(name, new ForwardOnlyStream(Payload(3 << 20, 1)), new BlobWriteOptions { Overwrite = false }, Ct);

        await Assert.ThrowsAsync<BlobAlreadyExistsException>(() =>
            Store.WriteAsync(name, new ForwardOnlyStream(Payload(3 << 20, 2)), new BlobWriteOptions { Overwrite = false }, Ct));

        Assert.Equal(Payload(3 << 20, 1), await ReadAsync(name));
        BlockList blocks = await azurite.Container.GetBlockBlobClient(name).GetBlockListAsync(cancellationToken: Ct);
        Assert.Equal(3, blocks.CommittedBlocks.Count());
    }

    [Fact]
    public async Task RacingBlockUploadsFromForwardOnlyStreamsFailCleanlyOrWinWhole()
    {
        const int writers = 4;
        var name = P + "raced.bin";
        var payloads = Enumerable.Range(0, writers).Select(i => Payload(3 << 20, 300 + i)).ToArray();

        var outcomes = await Task.WhenAll(Enumerable.Range(0, writers).Select(i => Task.Run(async () =>
        {
            try
            {
                await Store.WriteAsync(name, new ForwardOnlyStream(payloads[i]), cancellationToken: Ct);
                return (Writer: i, Error: (IOException?)null);
            }
            catch (IOException e)
            {
                return (Writer: i, Error: e);
            }
        }, Ct)));

        Assert.All(outcomes.Where(o => o.Error is not null), o => Assert.Contains("concurrent writes", o.Error!.Message));
        var content = await ReadAsync(name);
        var winner = Assert.Single(outcomes, o => payloads[o.Writer].AsSpan().SequenceEqual(content));
        Assert.Null(winner.Error);
    }

    [Fact]
    public async Task AReadOpenDuringAnOverwriteFailsRatherThanMixing()
    {
        var name = P + "a.bin";
        // Larger than the 4 MiB the SDK's read stream fetches at a time, so reading on needs a second request.
        await WriteAsync(name, Payload(5 << 20, 1));
        await using var reader = await Store.OpenReadAsync(name, Ct);
        var first = new byte[1000];
        await reader.ReadExactlyAsync(first, Ct);

        await WriteAsync(name, Payload(5 << 20, 2));

        var rest = new MemoryStream();
        var error = await Assert.ThrowsAsync<RequestFailedException>(() => reader.CopyToAsync(rest, Ct));
        Assert.Equal(412, error.Status);
    }
}
