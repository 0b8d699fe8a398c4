using System.Net;
using System.Text.Json.Nodes;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>The fine-tune routes and the model list under the real host.</summary>
[Collection(HostCollection.Name)]
public sealed class FineTuneApiTests(HostFixture host)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AFineTuneRunsToAVersionThatTheModelListShowsAndAGenerationCanName()
    {
        await host.EnsureRunningAsync();
        var status = await host.BaselineFineTune.Value;

        Assert.True(status.Text("status") == "Completed", status.ToJsonString());
        Assert.Equal((FineTunes.TotalSteps, FineTunes.TotalSteps, 8), (status.Int("step"), status.Int("totalSteps"), status.Int("datasetItems")));
        Assert.Equal($"finetuned/{FineTunes.BaselineRunId}", status.Text("model"));
        Assert.EndsWith($"/api/finetunes/{FineTunes.BaselineRunId}/grid", status.Text("gridUrl"));

        using (var grid = await host.SendAsync(HttpMethod.Get, $"finetunes/{FineTunes.BaselineRunId}/grid", "GetFineTuneGrid"))
        {
            Assert.Equal(HttpStatusCode.OK, grid.StatusCode);
            // One 128² column per validation prompt, the EMA row over the raw row.
            Assert.Equal((128, 256), (Png.Read(await grid.Content.ReadAsByteArrayAsync(Token)).Width, Png.Read(await grid.Content.ReadAsByteArrayAsync(Token)).Height));
        }

        var models = await host.JsonAsync(HttpMethod.Get, "models", "ListModels");
        var version = models.Items("models").Single(m => m.Text("name") == status.Text("model"));
        Assert.Equal(($"finetuned/{FineTunes.BaselineRunId}/raw", "blog", FineTunes.TotalSteps), (version.Text("rawName"), version.Text("recipe"), version.Int("steps")));

        var generated = await host.JsonAsync(HttpMethod.Post, "generations?wait=60", "StartGeneration",
            new { prompt = "green vertical stripes on white", width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 3, priorModel = version.Text("name") });
        Assert.True(generated.Text("status") == "Completed", generated.ToJsonString());
        // The recipe pins the revision the name followed when the request came in, so the image can be made again.
        Assert.Equal(version.Text("revisionName"), generated["recipe"]!["settings"].Text("priorModel"));

        using var cancelEnded = await host.SendAsync(HttpMethod.Delete, $"finetunes/{FineTunes.BaselineRunId}", "CancelFineTune");
        Assert.Equal(HttpStatusCode.Conflict, cancelEnded.StatusCode);
        Assert.Equal("application/problem+json", cancelEnded.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task AnInvalidFineTuneRequestIsProblemJsonNamingEachBadField()
    {
        await host.EnsureRunningAsync();
        using var response = await host.SendAsync(HttpMethod.Post, "finetunes", "StartFineTune",
            new { dataset = new { prefix = "datasets/none/" }, recipe = "fastest", totalSteps = 0, resolution = 100 });
        string body = await response.Content.ReadAsStringAsync(Token);
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = JsonNode.Parse(body)!["errors"]!.AsObject().Select(e => e.Key).ToArray();
        Assert.Superset(new HashSet<string> { "recipe", "totalSteps", "resolution" }, errors.ToHashSet());
    }
}
