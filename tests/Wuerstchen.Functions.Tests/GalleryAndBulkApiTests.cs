using System.IO.Compression;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wuerstchen.Functions.Bulk;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Functions.Training;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Tests;

/// <summary>The web app's endpoints: the gallery list, bulk jobs over HTTP with their manifest and zip, the installed models.</summary>
public sealed class GalleryAndBulkApiTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static string Tiny(string prompt, int seed, string? negative = null) =>
        HttpRequests.Json(new { prompt, negativePrompt = negative, width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed });

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task TheGalleryListsGenerationsNewestFirstInPagesThatContinueWithTheStoresToken(bool useAzurite)
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite);
        var ids = new List<string>();
        for (int i = 0; i < 5; i++)
        {
            var started = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", Tiny($"a {(i % 2 == 0 ? "red" : "blue")} square {i}", i)), environment.Client, Token);
            ids.Add(IdOf(started));
            await Task.Delay(20, Token); // distinct creation times
        }
        var redecode = await environment.Http.Redecode(HttpRequests.Make("POST", $"/api/generations/{ids[0]}/redecode", HttpRequests.Json(new { decoderSeed = 99 })), environment.Client, ids[0], Token);
        string redecodeId = IdOf(redecode);
        foreach (string id in ids.Append(redecodeId))
            await environment.Client.WaitForInstanceCompletionAsync(id, Token);

        var seen = new List<GenerationListItem>();
        string? token = null;
        int pages = 0;
        do
        {
            var page = await List(environment, $"?limit=2{(token is null ? "" : "&continuationToken=" + Uri.EscapeDataString(token))}");
            Assert.InRange(page.Items.Count, 1, 2);
            seen.AddRange(page.Items);
            token = page.ContinuationToken;
            Assert.Equal(token is null, page.Next is null);
            pages++;
        }
        while (token is not null && pages < 10);

        Assert.Equal([redecodeId, .. Enumerable.Reverse(ids)], seen.Select(s => s.Id));
        Assert.All(seen, s => Assert.Equal("Completed", s.Status));
        Assert.All(seen, s => Assert.Single(s.Images));
        Assert.Equal(ids[0], seen[0].RedecodeOf);
        Assert.Equal(99UL, seen[0].DecoderSeed);
        Assert.Equal("a red square 4", seen[1].Prompt);

        var red = await List(environment, "?q=RED");
        Assert.Equal(["a red square 0", "a red square 4", "a red square 2", "a red square 0"], red.Items.Select(i => i.Prompt));
        var byModel = await List(environment, "?model=warp-ai/wuerstchen-prior&limit=100");
        Assert.Equal(6, byModel.Items.Count);
        Assert.Empty((await List(environment, "?model=finetuned/nothing")).Items);

        var bad = await environment.Gallery.List(HttpRequests.Make("GET", "/api/generations", query: "?limit=0"), environment.Client, Token);
        var problem = Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(bad).Value);
        Assert.Contains("limit", problem.Errors.Keys);
    }

    [Fact]
    public async Task AGalleryPageReadsOnlyItsOwnEntries()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        var gallery = environment.Services.GetRequiredService<GenerationGallery>();
        // Fifty entries of generations that exist (the same instance, recorded under fifty creation times) …
        var started = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", Tiny("counted", 1)), environment.Client, Token);
        string id = IdOf(started);
        var entry = (await gallery.ListAsync(environment.Client, new GalleryQuery(1), Token)).Items.Single().Entry;
        for (int i = 0; i < 50; i++)
            await gallery.RecordAsync(entry with { CreatedAt = entry.CreatedAt.AddDays(-1 - i) }, Token);

        // … and a counting store: a page of three opens three entries, however many lie behind it.
        var counting = new ReadCountingStore(environment.Store);
        var counted = new GenerationGallery(counting);
        var first = await counted.ListAsync(environment.Client, new GalleryQuery(3), Token);
        var deep = await counted.ListAsync(environment.Client, new GalleryQuery(3, first.ContinuationToken), Token);
        Assert.Equal(3, first.Items.Count);
        Assert.Equal(3, deep.Items.Count);
        Assert.Equal(6, counting.Reads);
        Assert.True(deep.Items[0].Entry.CreatedAt < first.Items[2].Entry.CreatedAt);
        await environment.Client.WaitForInstanceCompletionAsync(id, Token);
    }

    [Fact]
    public async Task RetentionTakesAPurgedGenerationOutOfTheGallery()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: new Dictionary<string, string?> { ["Wuerstchen:Retention:Period"] = "00:00:01" });
        string id = IdOf(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", Tiny("short-lived", 3)), environment.Client, Token));
        await environment.Client.WaitForInstanceCompletionAsync(id, Token);
        // Repeating the request (same idempotency key) records the same entry again, never a second one.
        var headers = new Dictionary<string, string> { ["Idempotency-Key"] = "gallery-once" };
        string keyed = IdOf(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", Tiny("keyed", 4), headers), environment.Client, Token));
        await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", Tiny("keyed", 4), headers), environment.Client, Token);
        await environment.Client.WaitForInstanceCompletionAsync(keyed, Token);
        Assert.Equal([keyed, id], (await List(environment, "")).Items.Select(i => i.Id));
        Assert.Equal(4, await CountAsync(environment.Store, "gallery/"));

        await environment.Services.GetRequiredService<Wuerstchen.Workflows.Retention.RetentionPurger>().PurgeAsync(environment.Client, DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1), Token);

        Assert.Empty((await List(environment, "")).Items);
        Assert.Equal(0, await CountAsync(environment.Store, "gallery/"));
    }

    private static async Task<int> CountAsync(IBlobStore store, string prefix)
    {
        int count = 0;
        await foreach (var _ in store.ListAsync(prefix, Token))
            count++;
        return count;
    }

    [Fact]
    public async Task ABulkJobOverHttpRunsAndHandsOutItsManifestImagesAndZip()
    {
        await using var environment = await TestEnvironment.StartAsync();
        var bulk = Bulk(environment);
        string body = HttpRequests.Json(new
        {
            jobId = "web-three",
            settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 10 },
            prompts = new object[] { "a red square", "a blue square", new { prompt = "a green square", seed = 7 } },
        });
        var started = Assert.IsType<AcceptedResult>(await bulk.Start(HttpRequests.Make("POST", "/api/bulk", body), environment.Client, Token));
        Assert.EndsWith("/api/bulk/web-three", started.Location);
        var again = Assert.IsType<AcceptedResult>(await bulk.Start(HttpRequests.Make("POST", "/api/bulk", body), environment.Client, Token));
        Assert.Contains("\"existing\":true", HttpRequests.Json(again.Value!));

        await environment.Client.WaitForInstanceCompletionAsync(BulkGenerateOrchestration.InstanceIdFor("web-three"), Token);
        var status = Assert.IsType<BulkStatusResponse>(Assert.IsType<OkObjectResult>(await bulk.Get(HttpRequests.Make("GET", "/api/bulk/web-three"), environment.Client, "web-three", Token)).Value);
        Assert.Equal("Completed", status.Status);
        Assert.Equal(3, status.Summary!.Succeeded);
        Assert.Equal(status.TotalBatches, status.CompletedBatches);
        Assert.Equal(["a red square", "a blue square", "a green square"], status.Results!.Select(r => r.Prompt));
        Assert.Equal(7UL, status.Results![2].Seed);

        var manifest = Assert.IsType<FileStreamResult>(await bulk.GetManifest(HttpRequests.Make("GET", "/api/bulk/web-three/manifest"), "web-three", Token));
        string[] lines = (await new StreamReader(manifest.FileStream).ReadToEndAsync(Token)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);

        var image = Assert.IsType<FileStreamResult>(await bulk.GetImage(HttpRequests.Make("GET", "/api/bulk/web-three/images/1/0"), "web-three", 1, 0, Token));
        Assert.Equal("image/png", image.ContentType);
        Assert.Equal(404, HttpRequests.StatusOf(await bulk.GetImage(HttpRequests.Make("GET", "/api/bulk/web-three/images/3/0"), "web-three", 3, 0, Token)));

        var zip = Assert.IsType<BulkZipResult>(await bulk.GetZip(HttpRequests.Make("GET", "/api/bulk/web-three/zip"), "web-three", Token));
        var request = HttpRequests.Make("GET", "/api/bulk/web-three/zip");
        var body2 = new MemoryStream();
        request.HttpContext.Response.Body = body2;
        await zip.ExecuteResultAsync(new ActionContext(request.HttpContext, new RouteData(), new ActionDescriptor()));
        using var archive = new ZipArchive(new MemoryStream(body2.ToArray()), ZipArchiveMode.Read);
        Assert.Equal(["00000-0.png", "00001-0.png", "00002-0.png", "manifest.jsonl"], archive.Entries.Select(e => e.FullName).Order(StringComparer.Ordinal));
        Assert.Equal("application/zip", request.HttpContext.Response.ContentType);
        using (var png = archive.GetEntry("00001-0.png")!.Open())
        {
            var header = new byte[8];
            await png.ReadExactlyAsync(header, Token);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 13, 10, 26, 10 }, header);
        }
        string zipManifest = await new StreamReader(archive.GetEntry("manifest.jsonl")!.Open()).ReadToEndAsync(Token);
        Assert.Contains("\"images\":[\"00002-0.png\"]", zipManifest);
    }

    [Fact]
    public async Task ABadBulkJobIsAnsweredWithItsFieldsAndStartsNothing()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        var bulk = Bulk(environment);
        var badSettings = await bulk.Start(HttpRequests.Make("POST", "/api/bulk", HttpRequests.Json(new { prompts = new[] { "x" }, settings = new { width = 1000 } })), environment.Client, Token);
        var errors = Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(badSettings).Value).Errors;
        Assert.Contains("settings.width", errors.Keys);

        var noPrompts = await bulk.Start(HttpRequests.Make("POST", "/api/bulk", HttpRequests.Json(new { prompts = Array.Empty<string>() })), environment.Client, Token);
        Assert.Contains("prompts", Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(noPrompts).Value).Errors.Keys);

        var blob = await bulk.Start(HttpRequests.Make("POST", "/api/bulk", HttpRequests.Json(new { promptsBlob = "inputs/x.jsonl" })), environment.Client, Token);
        Assert.Contains("promptsBlob", Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(blob).Value).Errors.Keys);

        Assert.Equal(404, HttpRequests.StatusOf(await bulk.Get(HttpRequests.Make("GET", "/api/bulk/nothing"), environment.Client, "nothing", Token)));
        Assert.Equal(404, HttpRequests.StatusOf(await bulk.GetManifest(HttpRequests.Make("GET", "/api/bulk/nothing/manifest"), "nothing", Token)));
        Assert.Equal(404, HttpRequests.StatusOf(await bulk.Get(HttpRequests.Make("GET", "/api/bulk/..%2f"), environment.Client, "../x", Token)));
        await foreach (var _ in environment.Client.GetAllInstancesAsync().WithCancellation(Token))
            Assert.Fail("an instance was started");
    }

    [Fact]
    public void TheInstalledModelsAreListedPerStageWithTheirSize()
    {
        using var services = new ServiceCollection().BuildServiceProvider();
        var temp = new Wuerstchen.Models.Tests.TempDirectory();
        string root = temp.File("models");
        Directory.CreateDirectory(root);
        Directory.CreateSymbolicLink(Path.Combine(root, "prior-pipeline"), Wuerstchen.Models.Tests.ParityFixtures.PathOf("models/prior-pipeline"));
        Directory.CreateSymbolicLink(Path.Combine(root, "decoder-pipeline"), Wuerstchen.Models.Tests.ParityFixtures.PathOf("models/decoder-pipeline"));
        var locator = new Wuerstchen.Pipeline.Models.ModelLocator(Options.Create(new Wuerstchen.Pipeline.Models.ModelOptions { Root = root }));
        var list = Assert.IsType<InstalledModelListResponse>(Assert.IsType<OkObjectResult>(
            new InstalledModelsApi(new Wuerstchen.Pipeline.Models.InstalledModels(locator), Options.Create(new ApiOptions())).List()).Value).Models;
        Assert.Equal(["decoder-pipeline:decoder", "prior-pipeline:prior"], list.Select(m => $"{m.Name}:{m.Stage}").Order(StringComparer.Ordinal));
        long weights = new FileInfo(Wuerstchen.Models.Tests.ParityFixtures.PathOf("models/prior-pipeline/prior/diffusion_pytorch_model.safetensors")).Length;
        Assert.True(list.Single(m => m.Stage == "prior").SizeBytes > weights);
        temp.Dispose();
    }

    private static BulkHttpFunctions Bulk(TestEnvironment environment) =>
        new(environment.Services.GetRequiredService<BulkApi>());

    private static async Task<GenerationListResponse> List(TestEnvironment environment, string query) =>
        Assert.IsType<GenerationListResponse>(Assert.IsType<OkObjectResult>(
            await environment.Gallery.List(HttpRequests.Make("GET", "/api/generations", query: query), environment.Client, Token)).Value);

    private static string IdOf(IActionResult result) =>
        JsonDocument.Parse(HttpRequests.Json(Assert.IsType<AcceptedResult>(result).Value!)).RootElement.GetProperty("id").GetString()!;

    /// <summary>Counts the blobs opened for reading.</summary>
    private sealed class ReadCountingStore(IBlobStore inner) : IBlobStore
    {
        public int Reads;
        public string Description => inner.Description;
        public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default) => inner.ExistsAsync(name, cancellationToken);
        public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default) => inner.GetInfoAsync(name, cancellationToken);
        public Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default) => inner.WriteAsync(name, content, options, cancellationToken);
        public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Reads);
            return inner.OpenReadAsync(name, cancellationToken);
        }
        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default) => inner.DeleteAsync(name, cancellationToken);
        public IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
        public Task<BlobListPage> ListPageAsync(string prefix, int pageSize, string? continuationToken, CancellationToken cancellationToken = default) =>
            inner.ListPageAsync(prefix, pageSize, continuationToken, cancellationToken);
        public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default) => inner.GetReadUriAsync(name, lifetime, cancellationToken);
    }
}
