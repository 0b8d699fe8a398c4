using System.Net;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Tests.Storage;

/// <summary>Read links of a store reached with a token credential (managed identity), against Azurite with OAuth.</summary>
public sealed class UserDelegationSasTests(OAuthAzuriteFixture azurite) : IClassFixture<OAuthAzuriteFixture>
{
    [Fact]
    public async Task ReadLinksAreSignedWithAUserDelegationKeyAndAreReadOnly()
    {
        azurite.RequireAzurite();
        var ct = TestContext.Current.CancellationToken;
        var store = new AzureBlobStore(azurite.Service.GetBlobContainerClient("images"));
        byte[] content = [1, 2, 3, 4, 5];
        await store.WriteAsync("images/a.png", new MemoryStream(content), new BlobWriteOptions { ContentType = "image/png" }, ct);

        var first = await store.GetReadUriAsync("images/a.png", TimeSpan.FromMinutes(30), ct);
        var second = await store.GetReadUriAsync("images/a.png", TimeSpan.FromHours(2), ct);

        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.Contains("skoid=", first.Query);
        Assert.Contains("sp=r&", first.Query + "&");
        Assert.Equal(Parameter(first, "skt"), Parameter(second, "skt"));
        using var http = new HttpClient(azurite.TrustingHandler());
        foreach (var link in new[] { first, second })
        {
            using var get = await http.GetAsync(link, ct);
            Assert.Equal(HttpStatusCode.OK, get.StatusCode);
            Assert.Equal(content, await get.Content.ReadAsByteArrayAsync(ct));
        }

        var forged = new UriBuilder(first) { Query = first.Query.TrimStart('?').Replace("sp=r", "sp=rw") }.Uri;
        using var forgedGet = await http.GetAsync(forged, ct);
        Assert.Equal(HttpStatusCode.Forbidden, forgedGet.StatusCode);

        using var put = new HttpRequestMessage(HttpMethod.Put, first) { Content = new ByteArrayContent([9]) };
        put.Headers.Add("x-ms-blob-type", "BlockBlob");
        using var putResponse = await http.SendAsync(put, ct);
        Assert.Equal(HttpStatusCode.Forbidden, putResponse.StatusCode);
    }

    private static string? Parameter(Uri uri, string name) =>
        uri.Query.TrimStart('?').Split('&').Select(p => p.Split('=', 2)).FirstOrDefault(p => p[0] == name)?[1];
}
