using System.Text;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Tests.Storage;

public sealed class FileSystemBlobStoreTests : BlobStoreContractTests
{
    private readonly TempDirectory _temp = new();

    protected override ValueTask<IBlobStore> CreateStoreAsync() => ValueTask.FromResult<IBlobStore>(new FileSystemBlobStore(_temp.Path));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        _temp.Dispose();
    }

    [Fact]
    public async Task BlobsAreFilesUnderTheRoot()
    {
        await WriteAsync(P + "images/a.png", [1, 2, 3], new BlobWriteOptions { ContentType = "image/png" });

        Assert.Equal([1, 2, 3], await File.ReadAllBytesAsync(Path.Combine(_temp.Path, P, "images", "a.png"), Ct));
        Assert.Equal(_temp.Path, Store.Description);
        Assert.Equal(["a.png"], Directory.GetFiles(Path.Combine(_temp.Path, P, "images")).Select(Path.GetFileName));
    }

    [Fact]
    public async Task ReadLinksAreNotAvailable()
    {
        await WriteAsync(P + "a", [1]);

        Assert.Null(await Store.GetReadUriAsync(P + "a", TimeSpan.FromHours(1), Ct));
    }

    [Fact]
    public async Task LeftoversOfInterruptedWritesAndSidecarsAreNeverListed()
    {
        await WriteAsync(P + "a", [1], new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["k"] = "v" } });
        await File.WriteAllBytesAsync(Path.Combine(_temp.Path, P, ".wuerstchen-tmp-0123456789abcdef"), [9], Ct);
        Assert.True(Directory.Exists(Path.Combine(_temp.Path, ".wuerstchen", "meta")));

        Assert.Equal([P + "a"], (await ListAsync("")).Select(b => b.Name));
    }

    [Fact]
    public async Task MetadataOfContentReplacedBehindTheStoresBackIsDropped()
    {
        var name = P + "a.txt";
        await WriteAsync(name, Encoding.UTF8.GetBytes("old"), new BlobWriteOptions { ContentType = "text/plain", Metadata = new Dictionary<string, string> { ["k"] = "v" } });

        await File.WriteAllTextAsync(Path.Combine(_temp.Path, name), "changed elsewhere", Ct);

        var info = await Store.GetInfoAsync(name, Ct);
        Assert.NotNull(info);
        Assert.Equal("changed elsewhere".Length, info.Size);
        Assert.Null(info.ContentType);
        Assert.Empty(info.Metadata);
    }

    [Fact]
    public async Task AReaderThatOpenedBeforeAnOverwriteKeepsTheOldContent()
    {
        var name = P + "a.bin";
        await WriteAsync(name, Payload(100_000, 1));
        await using var reader = await Store.OpenReadAsync(name, Ct);

        await WriteAsync(name, Payload(50_000, 2));
        Assert.True(await Store.DeleteAsync(name, Ct));

        using var copy = new MemoryStream();
        await reader.CopyToAsync(copy, Ct);
        Assert.Equal(Payload(100_000, 1), copy.ToArray());
    }

    [Fact]
    public async Task AFailedWriteLeavesNoTempFile()
    {
        await Assert.ThrowsAsync<IOException>(() => Store.WriteAsync(P + "a", new FailingStream(Payload(10_000, 1), failAt: 5000), cancellationToken: Ct));
        await Assert.ThrowsAsync<BlobAlreadyExistsException>(async () =>
        {
            await WriteAsync(P + "b", [1]);
            await WriteAsync(P + "b", [2], new BlobWriteOptions { Overwrite = false });
        });

        Assert.Equal(["b"], Directory.GetFiles(Path.Combine(_temp.Path, P)).Select(Path.GetFileName));
    }

    [Fact]
    public async Task AFileWhereAFolderIsNeededIsReportedWithTheBlobName()
    {
        await WriteAsync(P + "a", [1]);

        var error = await Assert.ThrowsAsync<IOException>(() => WriteAsync(P + "a/b", [2]));

        Assert.Contains($"'{P}a/b'", error.Message);
    }
}
