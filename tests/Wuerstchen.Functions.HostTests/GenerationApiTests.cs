using System.Net;
using System.Text.Json.Nodes;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>The generation API under the real host, with function keys: start, status, ?wait, the PNG, re-decode, cancel, idempotency, field errors.</summary>
[Collection(HostCollection.Name)]
public sealed class GenerationApiTests(HostFixture host)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;
    private static readonly TimeSpan Generous = TimeSpan.FromMinutes(3);

    public static object Small(string prompt, int seed) => new { prompt, width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed };

    private async Task<byte[]> ImageAsync(string id, int index)
    {
        using var response = await host.SendAsync(HttpMethod.Get, $"generations/{id}/images/{index}", "GetGenerationImage");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("image/png", response.Content.Headers.ContentType?.MediaType);
        return await response.Content.ReadAsByteArrayAsync(Token);
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status)
    {
        string body = await response.Content.ReadAsStringAsync(Token);
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal((int)status, JsonNode.Parse(body).Int("status"));
    }

    [Fact]
    public async Task AGenerationWaitedForAnswersItsStatusItsPngAndIsReDecodedWithAnotherSeed()
    {
        await host.EnsureRunningAsync();
        var done = await host.JsonAsync(HttpMethod.Post, "generations?wait=60", "StartGeneration", Small("a lighthouse at dusk", 41));
        string id = done.Text("id");
        Assert.Equal("Completed", done.Text("status"));
        // Links name this host: WEBSITE_HOSTNAME, which start-host.sh sets to 127.0.0.1:{port} as Core Tools does (Azure
        // sets the app's own host name).
        Assert.Equal([$"http://127.0.0.1:{host.Host.Port}/api/generations/{id}/images/0"], done.Items("images").Select(i => i.GetValue<string>()));

        var status = await host.JsonAsync(HttpMethod.Get, $"generations/{id}", "GetGeneration");
        Assert.Equal(("Completed", "a lighthouse at dusk"), (status.Text("status"), status["recipe"]!["items"]![0].Text("prompt")));

        byte[] png = await ImageAsync(id, 0);
        var (width, height, text) = Png.Read(png);
        Assert.Equal((128, 128), (width, height));
        Assert.Contains("a lighthouse at dusk", text["wuerstchen:recipe"]);
        using (var outOfRange = await host.SendAsync(HttpMethod.Get, $"generations/{id}/images/1", "GetGenerationImage"))
            await AssertProblemAsync(outOfRange, HttpStatusCode.NotFound);

        using var redecode = await host.SendAsync(HttpMethod.Post, $"generations/{id}/redecode", "RedecodeGeneration", new { decoderSeed = 99 });
        string redecodeBody = await redecode.Content.ReadAsStringAsync(Token);
        Assert.True(redecode.StatusCode == HttpStatusCode.Accepted, redecodeBody);
        string second = JsonNode.Parse(redecodeBody).Text("id");
        Assert.NotEqual(id, second);
        Assert.EndsWith($"/api/generations/{second}", redecode.Headers.Location?.ToString());
        var redecoded = await host.PollAsync($"generations/{second}", "GetGeneration", HostFixture.Ended, Generous);
        Assert.Equal("Completed", redecoded.Text("status"));
        byte[] other = await ImageAsync(second, 0);
        Assert.Equal((128, 128), (Png.Read(other).Width, Png.Read(other).Height));
        Assert.NotEqual(png, other);
    }

    [Fact]
    public async Task AGenerationStartedWithoutWaitingIsAcceptedFollowedAndCancelledWhileItRuns()
    {
        await host.EnsureRunningAsync();
        using var started = await host.SendAsync(HttpMethod.Post, "generations", "StartGeneration",
            new { prompt = "a long one", width = 512, height = 512, priorSteps = 2, decoderSteps = 30, seed = 5 });
        string body = await started.Content.ReadAsStringAsync(Token);
        Assert.True(started.StatusCode == HttpStatusCode.Accepted, body);
        string id = JsonNode.Parse(body).Text("id");
        Assert.EndsWith($"/api/generations/{id}", started.Headers.Location?.ToString());
        Assert.NotNull(started.Headers.RetryAfter);

        await host.PollAsync($"generations/{id}", "GetGeneration", s => s.Text("status") == "Running", Generous);
        using (var cancel = await host.SendAsync(HttpMethod.Delete, $"generations/{id}", "CancelGeneration"))
            Assert.Equal(HttpStatusCode.Accepted, cancel.StatusCode);
        var ended = await host.PollAsync($"generations/{id}", "GetGeneration", HostFixture.Ended, Generous);
        Assert.Equal("Terminated", ended.Text("status"));

        using (var again = await host.SendAsync(HttpMethod.Delete, $"generations/{id}", "CancelGeneration"))
            await AssertProblemAsync(again, HttpStatusCode.Conflict);
        using (var image = await host.SendAsync(HttpMethod.Get, $"generations/{id}/images/0", "GetGenerationImage"))
            await AssertProblemAsync(image, HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task ARepeatWithTheSameIdempotencyKeyAttachesToTheSameGenerationAndAnotherBodyIsAConflict()
    {
        await host.EnsureRunningAsync();
        var key = new Dictionary<string, string> { ["Idempotency-Key"] = "order-" + Guid.NewGuid().ToString("N") };
        var first = await host.JsonAsync(HttpMethod.Post, "generations", "StartGeneration", Small("a red kite", 7), HttpStatusCode.Accepted, key);
        var repeat = await host.JsonAsync(HttpMethod.Post, "generations", "StartGeneration", Small("a red kite", 7), HttpStatusCode.Accepted, key);
        Assert.Equal((first.Text("id"), false, true), (repeat.Text("id"), first["existing"]!.GetValue<bool>(), repeat["existing"]!.GetValue<bool>()));

        using (var conflict = await host.SendAsync(HttpMethod.Post, "generations", "StartGeneration", Small("a blue kite", 7), key))
            await AssertProblemAsync(conflict, HttpStatusCode.Conflict);

        var done = await host.PollAsync($"generations/{first.Text("id")}", "GetGeneration", HostFixture.Ended, Generous);
        Assert.Equal("Completed", done.Text("status"));
        Assert.Single(done.Items("images"));
    }

    [Fact]
    public async Task CallersWithDifferentKeysNeverShareAGenerationThroughAnIdempotencyKey()
    {
        await host.EnsureRunningAsync();
        string other = await host.CreateFunctionKeyAsync("StartGeneration", "another-caller");
        string key = "order-" + Guid.NewGuid().ToString("N");
        var mine = await host.JsonAsync(HttpMethod.Post, "generations", "StartGeneration", Small("a grey seal", 9), HttpStatusCode.Accepted,
            new Dictionary<string, string> { ["Idempotency-Key"] = key });
        var theirs = await host.JsonAsync(HttpMethod.Post, "generations", "StartGeneration", Small("a grey seal", 9), HttpStatusCode.Accepted,
            new Dictionary<string, string> { ["Idempotency-Key"] = key, ["x-functions-key"] = other });

        // The host authenticates each key as its own identity (keyid claim); the app scopes idempotency keys by it.
        Assert.NotEqual(mine.Text("id"), theirs.Text("id"));
        Assert.False(theirs["existing"]!.GetValue<bool>());
        foreach (string id in new[] { mine.Text("id"), theirs.Text("id") })
            Assert.Equal("Completed", (await host.PollAsync($"generations/{id}", "GetGeneration", HostFixture.Ended, Generous)).Text("status"));
    }

    [Fact]
    public async Task BadRequestsAreProblemJsonThatNameEveryBadField()
    {
        await host.EnsureRunningAsync();
        using (var response = await host.SendAsync(HttpMethod.Post, "generations", "StartGeneration",
                   new { prompt = "x", width = 1000, images = 99, priorModel = "someone/unknown-prior" }))
        {
            await AssertProblemAsync(response, HttpStatusCode.BadRequest);
            var errors = JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["errors"]!.AsObject();
            Assert.Equal(["images", "priorModel", "width"], errors.Select(e => e.Key).Order());
            Assert.Contains("896 and 1024", errors["width"]![0]!.GetValue<string>());
        }

        using (var response = await host.SendAsync(HttpMethod.Post, "generations", "StartGeneration", new { prompt = "x", negative_prompt = "y" }))
        {
            await AssertProblemAsync(response, HttpStatusCode.BadRequest);
            Assert.Contains("negative_prompt", await response.Content.ReadAsStringAsync(Token));
        }

        using (var response = await host.SendAsync(HttpMethod.Post, "generations?wait=forever", "StartGeneration", Small("x", 1)))
        {
            await AssertProblemAsync(response, HttpStatusCode.BadRequest);
            Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["errors"]!["wait"]);
        }

        using (var response = await host.SendAsync(HttpMethod.Post, "generations", "StartGeneration", Small("x", 1),
                   new Dictionary<string, string> { ["Idempotency-Key"] = new('k', 201) }))
        {
            await AssertProblemAsync(response, HttpStatusCode.BadRequest);
            Assert.NotNull(JsonNode.Parse(await response.Content.ReadAsStringAsync(Token))!["errors"]!["Idempotency-Key"]);
        }
    }
}
