using System.Text;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Tests.Storage;

/// <summary>
/// What every <see cref="IBlobStore"/> promises, run against each implementation. Every test works under its own
/// prefix, so stores may be shared between tests.
/// </summary>
public abstract class BlobStoreContractTests : IAsyncLifetime
{
    private IBlobStore? _store;

    protected IBlobStore Store => _store ?? throw new InvalidOperationException("The store is made in InitializeAsync.");

    /// <summary>This test's own corner of the store.</summary>
    protected string P { get; } = $"case-{Guid.NewGuid():N}/";

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected abstract ValueTask<IBlobStore> CreateStoreAsync();

    public async ValueTask InitializeAsync() => _store = await CreateStoreAsync();

    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    protected static byte[] Payload(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    protected async Task WriteAsync(string name, byte[] content, BlobWriteOptions? options = null) =>
        await Store.WriteAsync(name, new MemoryStream(content), options, Ct);

    protected async Task<byte[]> ReadAsync(string name)
    {
        await using var stream = await Store.OpenReadAsync(name, Ct);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, Ct);
        return copy.ToArray();
    }

    [Fact]
    public async Task LargeBinaryBlobRoundTripsFromAForwardOnlyStream()
    {
        var content = Payload(5 * 1024 * 1024 + 12_345, seed: 1);
        var name = P + "latents/stage-c.safetensors";

        await Store.WriteAsync(name, new ForwardOnlyStream(content), cancellationToken: Ct);

        Assert.Equal(content, await ReadAsync(name));
        var info = await Store.GetInfoAsync(name, Ct);
        Assert.NotNull(info);
        Assert.Equal(name, info.Name);
        Assert.Equal(content.Length, info.Size);
        Assert.False(string.IsNullOrEmpty(info.ETag));
        Assert.InRange(info.LastModified, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(5));
    }

    [Fact]
    public async Task EmptyBlobRoundTrips()
    {
        await WriteAsync(P + "empty", []);

        Assert.Empty(await ReadAsync(P + "empty"));
        Assert.Equal(0, (await Store.GetInfoAsync(P + "empty", Ct))!.Size);
    }

    [Fact]
    public async Task OverwriteReplacesContentMetadataAndETag()
    {
        var name = P + "image.png";
        await WriteAsync(name, Payload(1000, 1), new BlobWriteOptions { ContentType = "image/png", Metadata = new Dictionary<string, string> { ["seed"] = "1" } });
        var first = await Store.GetInfoAsync(name, Ct);

        await WriteAsync(name, Payload(1000, 2), new BlobWriteOptions { ContentType = "image/webp", Metadata = new Dictionary<string, string> { ["steps"] = "60" } });

        Assert.Equal(Payload(1000, 2), await ReadAsync(name));
        var second = await Store.GetInfoAsync(name, Ct);
        Assert.NotNull(second);
        Assert.Equal("image/webp", second.ContentType);
        Assert.Equal(new Dictionary<string, string> { ["steps"] = "60" }, second.Metadata);
        Assert.NotEqual(first!.ETag, second.ETag);
    }

    [Fact]
    public async Task WriteWithoutOverwriteLeavesAnExistingBlobAlone()
    {
        var name = P + "manifest.json";
        var options = new BlobWriteOptions { Overwrite = false, Metadata = new Dictionary<string, string> { ["v"] = "1" } };
        await WriteAsync(name, Encoding.UTF8.GetBytes("first"), options);

        var conflict = await Assert.ThrowsAsync<BlobAlreadyExistsException>(() =>
            WriteAsync(name, Encoding.UTF8.GetBytes("second"), options with { Metadata = new Dictionary<string, string> { ["v"] = "2" } }));

        Assert.Equal(name, conflict.Name);
        Assert.Contains(name, conflict.Message);
        Assert.Equal("first", Encoding.UTF8.GetString(await ReadAsync(name)));
        Assert.Equal("1", (await Store.GetInfoAsync(name, Ct))!.Metadata["v"]);
    }

    [Fact]
    public async Task MetadataAndContentTypeRoundTripExactly()
    {
        var metadata = new Dictionary<string, string>
        {
            ["prompt"] = "Anthropomorphic cat dressed as a firefighter 🐱🚒",
            ["caption"] = "香肠 ソーセージ Würstchen",
            ["multiline"] = "line one\nline two\r\n\ttabbed",
            ["padded"] = "  spaces at both ends  ",
            ["ascii"] = "a=b; c=\"d\" 100% ~tilde, comma",
            ["empty"] = "",
            ["looks_encoded"] = "~utf8~%41 is not an A",
            ["_Mixed_Case9"] = "x",
        };
        var name = P + "out/image.png";

        await WriteAsync(name, [1, 2, 3], new BlobWriteOptions { ContentType = "image/png", Metadata = metadata });

        var info = await Store.GetInfoAsync(name, Ct);
        Assert.NotNull(info);
        Assert.Equal("image/png", info.ContentType);
        Assert.Equal(metadata, info.Metadata);
        var listed = Assert.Single(await ListAsync(P + "out/"));
        Assert.Equal(metadata, listed.Metadata);
        Assert.Equal("image/png", listed.ContentType);
        Assert.Equal(info.ETag, listed.ETag);
    }

    [Theory]
    [InlineData("bad-name")]
    [InlineData("1st")]
    [InlineData("grüße")]
    [InlineData("")]
    [InlineData("with space")]
    public async Task MetadataNamesMustBeIdentifiers(string key)
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() =>
            WriteAsync(P + "x", [1], new BlobWriteOptions { Metadata = new Dictionary<string, string> { [key] = "v" } }));

        Assert.Contains($"'{key}'", error.Message);
        Assert.False(await Store.ExistsAsync(P + "x", Ct));
    }

    [Fact]
    public async Task MetadataNamesThatDifferOnlyInCaseAreRejected()
    {
        var metadata = new Dictionary<string, string> { ["Seed"] = "1", ["seed"] = "2" };

        var error = await Assert.ThrowsAsync<ArgumentException>(() => WriteAsync(P + "x", [1], new BlobWriteOptions { Metadata = metadata }));

        Assert.Contains("case", error.Message);
    }

    [Fact]
    public async Task MissingBlobsAreReportedAsMissing()
    {
        var name = P + "nothing/here.bin";

        Assert.False(await Store.ExistsAsync(name, Ct));
        Assert.Null(await Store.GetInfoAsync(name, Ct));
        var error = await Assert.ThrowsAsync<BlobNotFoundException>(() => Store.OpenReadAsync(name, Ct));
        Assert.Equal(name, error.Name);
        Assert.Contains(name, error.Message);
        Assert.False(await Store.DeleteAsync(name, Ct));
        Assert.Empty(await ListAsync(P + "nothing/"));
    }

    [Fact]
    public async Task APrefixOfOtherBlobsIsNotABlob()
    {
        await WriteAsync(P + "folder/inside", [1]);
        var folder = P + "folder";

        Assert.False(await Store.ExistsAsync(folder, Ct));
        Assert.Null(await Store.GetInfoAsync(folder, Ct));
        await Assert.ThrowsAsync<BlobNotFoundException>(() => Store.OpenReadAsync(folder, Ct));
        Assert.False(await Store.DeleteAsync(folder, Ct));
        Assert.Equal([1], await ReadAsync(P + "folder/inside"));
    }

    [Fact]
    public async Task DeleteRemovesTheBlobAndItsMetadata()
    {
        var name = P + "doomed.bin";
        await WriteAsync(name, [1, 2, 3], new BlobWriteOptions { ContentType = "application/x-test", Metadata = new Dictionary<string, string> { ["k"] = "v" } });
        Assert.True(await Store.ExistsAsync(name, Ct));

        Assert.True(await Store.DeleteAsync(name, Ct));

        Assert.False(await Store.ExistsAsync(name, Ct));
        Assert.Null(await Store.GetInfoAsync(name, Ct));
        await Assert.ThrowsAsync<BlobNotFoundException>(() => Store.OpenReadAsync(name, Ct));
        Assert.Empty(await ListAsync(P));
        Assert.False(await Store.DeleteAsync(name, Ct));

        await WriteAsync(name, [4], new BlobWriteOptions { Overwrite = false });
        var info = await Store.GetInfoAsync(name, Ct);
        Assert.Empty(info!.Metadata);
        Assert.NotEqual("application/x-test", info.ContentType);
    }

    [Fact]
    public async Task ListReturnsBlobsUnderThePrefixInOrdinalOrder()
    {
        string[] names = ["img/b.png", "z", "img-x", ".hidden", "img/sub/c.bin", "img/a.png", "imf", "Z-upper", "img/ü.png"];
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
        {
            await WriteAsync(P + name, Payload(10 + i, i), new BlobWriteOptions { ContentType = "application/x-test", Metadata = new Dictionary<string, string> { ["i"] = $"{i}" } });
        }

        Assert.Equal(["img-x", "img/a.png", "img/b.png", "img/sub/c.bin", "img/ü.png"], Relative(await ListAsync(P + "img")));
        Assert.Equal(["img/a.png", "img/b.png", "img/sub/c.bin", "img/ü.png"], Relative(await ListAsync(P + "img/")));
        Assert.Equal(names.Order(StringComparer.Ordinal), Relative(await ListAsync(P)));
        Assert.Empty(await ListAsync(P + "img/none"));
        Assert.Empty(await ListAsync(P + "nowhere/"));

        var listed = (await ListAsync(P)).Single(b => b.Name == P + "img/sub/c.bin");
        var index = Array.IndexOf(names, "img/sub/c.bin");
        Assert.Equal(10 + index, listed.Size);
        Assert.Equal("application/x-test", listed.ContentType);
        Assert.Equal($"{index}", listed.Metadata["i"]);
        Assert.Equal((await Store.GetInfoAsync(listed.Name, Ct))!.ETag, listed.ETag);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("/etc/passwd", "absolute")]
    [InlineData("a//b", "empty segment")]
    [InlineData("a/", "empty segment")]
    [InlineData("../outside", "'..'")]
    [InlineData("a/../../outside", "'..'")]
    [InlineData("a/./b", "'.'")]
    [InlineData(".", "'.'")]
    [InlineData("a\\b", "'\\'")]
    [InlineData("a\0b", "control")]
    [InlineData("line\nbreak", "control")]
    [InlineData(".wuerstchen/meta/x", "reserved")]
    [InlineData("x/.wuerstchen-tmp-0123", "reserved")]
    public async Task InvalidNamesAreRejectedByEveryOperation(string name, string reason)
    {
        foreach (var operation in Operations(name))
        {
            var error = await Assert.ThrowsAnyAsync<ArgumentException>(operation);
            Assert.Contains($"'{name}'", error.Message);
            Assert.Contains(reason, error.Message);
        }
    }

    [Fact]
    public async Task NamesOfMoreThan1024CharactersAreRejected()
    {
        var name = string.Join('/', Enumerable.Repeat(new string('n', 99), 10)) + "/" + new string('z', 25);
        Assert.Equal(1025, name.Length);

        foreach (var operation in Operations(name))
        {
            var error = await Assert.ThrowsAnyAsync<ArgumentException>(operation);
            Assert.Contains("1024", error.Message);
        }

        var longest = P + name[(P.Length + 1)..];
        Assert.Equal(1024, longest.Length);
        await WriteAsync(longest, [7]);
        Assert.Equal([7], await ReadAsync(longest));
    }

    [Fact]
    public async Task UnicodeSpacesAndDotsInNamesAreFine()
    {
        string[] names = ["bilder/würstchen 🌭.png", "a.b/..c/...", ".env", "x/-y_z~(1)"];
        foreach (var name in names)
        {
            await WriteAsync(P + name, Encoding.UTF8.GetBytes(name));
            Assert.Equal(name, Encoding.UTF8.GetString(await ReadAsync(P + name)));
        }

        Assert.Equal(names.Order(StringComparer.Ordinal), Relative(await ListAsync(P)));
    }

    [Fact]
    public async Task NullNamesAndInvalidPrefixesAreRejected()
    {
        await Assert.ThrowsAsync<ArgumentNullException>(() => Store.GetInfoAsync(null!, Ct));
        await Assert.ThrowsAsync<ArgumentNullException>(() => ListAsync(null!));
        await Assert.ThrowsAsync<ArgumentException>(() => ListAsync("/abs"));
        await Assert.ThrowsAsync<ArgumentException>(() => ListAsync("a/../"));
        await Assert.ThrowsAsync<ArgumentException>(() => ListAsync("a//"));
    }

    [Fact]
    public async Task ConcurrentWritersOfOneNameNeverMix()
    {
        const int writers = 8;
        var name = P + "contended.bin";
        var payloads = Enumerable.Range(0, writers).Select(i => Payload(1024 * 1024, 100 + i)).ToArray();

        await Task.WhenAll(Enumerable.Range(0, writers).Select(i => Task.Run(() =>
            WriteAsync(name, payloads[i], new BlobWriteOptions { Metadata = new Dictionary<string, string> { ["writer"] = $"{i}" } }), Ct)));

        var content = await ReadAsync(name);
        var winner = Array.FindIndex(payloads, p => p.AsSpan().SequenceEqual(content));
        Assert.True(winner >= 0, "The blob holds none of the payloads whole.");
        Assert.Equal($"{winner}", (await Store.GetInfoAsync(name, Ct))!.Metadata["writer"]);
        Assert.Single(await ListAsync(P));
    }

    [Fact]
    public async Task ConcurrentWritersWithoutOverwriteHaveExactlyOneWinner()
    {
        const int writers = 8;
        var name = P + "claimed.bin";
        var payloads = Enumerable.Range(0, writers).Select(i => Payload(64 * 1024, 200 + i)).ToArray();

        var outcomes = await Task.WhenAll(Enumerable.Range(0, writers).Select(i => Task.Run(async () =>
        {
            try
            {
                await WriteAsync(name, payloads[i], new BlobWriteOptions { Overwrite = false });
                return i;
            }
            catch (BlobAlreadyExistsException)
            {
                return -1;
            }
        }, Ct)));

        var winner = Assert.Single(outcomes, o => o >= 0);
        Assert.Equal(payloads[winner], await ReadAsync(name));
    }

    [Fact]
    public async Task ReadersDuringASlowWriteSeeTheOldContentWhole()
    {
        var name = P + "slow.bin";
        var old = Payload(300_000, 1);
        var fresh = Payload(600_000, 2);
        await WriteAsync(name, old);
        var slow = new GatedStream(fresh, gateAt: 200_000);

        var writing = Store.WriteAsync(name, slow, cancellationToken: Ct);
        await slow.Reached.WaitAsync(TimeSpan.FromSeconds(30), Ct);

        Assert.Equal(old, await ReadAsync(name));
        Assert.Equal(old.Length, (await Store.GetInfoAsync(name, Ct))!.Size);
        Assert.Single(await ListAsync(P));

        slow.Open();
        await writing;
        Assert.Equal(fresh, await ReadAsync(name));
    }

    [Fact]
    public async Task AWriteWhoseSourceFailsLeavesTheOldBlob()
    {
        var name = P + "kept.bin";
        var old = Payload(1000, 1);
        await WriteAsync(name, old);

        await Assert.ThrowsAsync<IOException>(() => Store.WriteAsync(name, new FailingStream(Payload(300_000, 2), failAt: 100_000), cancellationToken: Ct));

        Assert.Equal(old, await ReadAsync(name));
        Assert.Equal(P + "kept.bin", Assert.Single(await ListAsync(P)).Name);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(7 * 24 + 1.0)]
    public async Task ReadLinkLifetimesMustBePositiveAndAtMostAWeek(double hours)
    {
        var error = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => Store.GetReadUriAsync(P + "x", TimeSpan.FromHours(hours), Ct));

        Assert.Equal("lifetime", error.ParamName);
    }

    private IEnumerable<Func<Task>> Operations(string name)
    {
        yield return () => Store.ExistsAsync(name, Ct);
        yield return () => Store.GetInfoAsync(name, Ct);
        yield return () => WriteAsync(name, [1]);
        yield return () => Store.OpenReadAsync(name, Ct);
        yield return () => Store.DeleteAsync(name, Ct);
        yield return () => Store.GetReadUriAsync(name, TimeSpan.FromHours(1), Ct);
    }

    protected async Task<List<BlobItemInfo>> ListAsync(string prefix)
    {
        var items = new List<BlobItemInfo>();
        await foreach (var item in Store.ListAsync(prefix, Ct))
        {
            items.Add(item);
        }

        return items;
    }

    private string[] Relative(IEnumerable<BlobItemInfo> items) => items.Select(i => i.Name[P.Length..]).ToArray();
}
