using System.Net;
using System.Text.Json.Nodes;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>
/// The web app, the API description and the health probes as the real host serves them: anonymous routes (a browser
/// and the platform's probes send no key), the web app's files embedded in the app and returned byte for byte.
/// </summary>
[Collection(HostCollection.Name)]
public sealed class WebAppTests(HostFixture host)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task TheSiteRootLeadsToTheWebAppWhoseEveryFileIsServedWithoutAKey()
    {
        await host.EnsureRunningAsync();
        using var handler = new HttpClientHandler { AllowAutoRedirect = false };
        using var http = new HttpClient(handler) { BaseAddress = host.Host.Http.BaseAddress, Timeout = TimeSpan.FromMinutes(1) };

        using (var root = await http.GetAsync("", Token))
        {
            Assert.Equal(HttpStatusCode.Redirect, root.StatusCode);
            Assert.Equal("/app/", root.Headers.Location?.OriginalString);
        }
        using (var page = await http.GetAsync("app/", Token))
        {
            Assert.Equal(HttpStatusCode.OK, page.StatusCode);
            Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            string html = await page.Content.ReadAsStringAsync(Token);
            Assert.Contains("<main id=\"main\"", html);
            Assert.Contains("src=\"js/app.js\"", html);
        }

        string wwwroot = Path.Combine(Repository.Root, "src", "Wuerstchen.Web", "wwwroot");
        var files = Directory.EnumerateFiles(wwwroot, "*", SearchOption.AllDirectories).ToArray();
        Assert.Contains(files, f => f.EndsWith(".js", StringComparison.Ordinal));
        foreach (string file in files)
        {
            string path = Path.GetRelativePath(wwwroot, file).Replace('\\', '/');
            using var response = await http.GetAsync("app/" + path, Token);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"/app/{path}: {(int)response.StatusCode}");
            Assert.Equal(await File.ReadAllBytesAsync(file, Token), await response.Content.ReadAsByteArrayAsync(Token));
            if (path.EndsWith(".js", StringComparison.Ordinal))
                Assert.Equal("text/javascript", response.Content.Headers.ContentType?.MediaType);
        }

        using var missing = await http.GetAsync("app/no-such-file.js", Token);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task TheHealthProbesAndTheApiDescriptionAnswerWithoutAKey()
    {
        await host.EnsureRunningAsync();
        foreach (string probe in (string[])["api/health/live", "api/health/startup", "api/health/ready", "api/health"])
        {
            using var response = await host.Host.Http.GetAsync(probe, Token);
            string body = await response.Content.ReadAsStringAsync(Token);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"/{probe}: {(int)response.StatusCode} {body}");
            Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
            Assert.NotNull(JsonNode.Parse(body));
        }

        using var document = await host.Host.Http.GetAsync("api/openapi.json", Token);
        Assert.Equal(HttpStatusCode.OK, document.StatusCode);
        var openApi = JsonNode.Parse(await document.Content.ReadAsStringAsync(Token))!;
        Assert.Equal("3.1.0", openApi["openapi"]!.GetValue<string>());
        var paths = openApi["paths"]!.AsObject();
        Assert.Contains("/app/{path}", paths.Select(p => p.Key));
        Assert.Contains("/api/generations", paths.Select(p => p.Key));
        using var reference = await host.Host.Http.GetAsync("api/docs", Token);
        Assert.Equal(HttpStatusCode.OK, reference.StatusCode);
        Assert.Equal("text/html", reference.Content.Headers.ContentType?.MediaType);
    }
}
