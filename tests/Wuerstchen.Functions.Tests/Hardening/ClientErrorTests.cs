using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;

namespace Wuerstchen.Functions.Tests.Hardening;

/// <summary>Input that used to end in a 500: each is a 400 or 404 naming the problem, and nothing starts.</summary>
public sealed class ClientErrorTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    public static TheoryData<string> MalformedIds => new() { "..", ".", ".wuerstchen", ".wuerstchen-tmp-1", "a\\b", "a/b", "gen-\u0001", "gen-\n", "", "\u00e9t\u00e9", new string('a', 300) };

    [Theory]
    [MemberData(nameof(MalformedIds))]
    public async Task ARedecodeOfAMalformedIdIsNotFoundBeforeAnyBlobIsRead(string id)
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);

        var result = await environment.Http.Redecode(HttpRequests.Make("POST", "/api/generations/x/redecode", "{\"decoderSeed\": 5}"), environment.Client, id, Token);

        Assert.Equal(404, HttpRequests.StatusOf(result));
        await foreach (var _ in environment.Client.GetAllInstancesAsync())
            Assert.Fail("a malformed id started an orchestration");
    }

    [Fact]
    public async Task APromptWithAnUnpairedSurrogateIsABadRequestNotAFailedStage()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);

        var result = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", "{\"prompt\": \"a cat \\ud800\", \"negativePrompt\": \"\\udc00\"}"), environment.Client, Token);

        Assert.Equal(400, HttpRequests.StatusOf(result));
        await foreach (var _ in environment.Client.GetAllInstancesAsync())
            Assert.Fail("a prompt that is not text started an orchestration");

        // The CLI and the bulk planner hand strings to the validator directly: it refuses them too, before the tokenizer.
        var validated = Pipeline.Generation.GenerationRequestValidator.Validate(
            new Pipeline.Generation.GenerationRequest { Prompt = "a cat \ud800", NegativePrompt = "\udc00" }, new Pipeline.Generation.GenerationLimits(), (_, _) => null, "float32");
        Assert.Contains("unpaired UTF-16 surrogate", Assert.Single(validated.Errors["prompt"]));
        Assert.Contains("unpaired UTF-16 surrogate", Assert.Single(validated.Errors["negativePrompt"]));
    }

    [Theory]
    [InlineData("NaN")]
    [InlineData("Infinity")]
    [InlineData("-Infinity")]
    [InlineData("1e400")]
    public async Task AWaitThatIsNotAFiniteNumberIsABadRequest(string wait)
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        string body = HttpRequests.Json(new { prompt = "x", width = 128, height = 128, priorSteps = 2, decoderSteps = 2 });

        var result = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body, query: $"?wait={wait}"), environment.Client, Token);

        var problem = Assert.IsType<ValidationProblemDetails>(Assert.IsType<BadRequestObjectResult>(result).Value);
        Assert.Contains(wait, problem.Errors["wait"][0]);
        await foreach (var _ in environment.Client.GetAllInstancesAsync(new OrchestrationQuery()))
            Assert.Fail("a bad wait started an orchestration");
    }
}
