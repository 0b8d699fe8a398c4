using System.Text.Json;
using Microsoft.OpenApi;
using Microsoft.OpenApi.Reader;

namespace Wuerstchen.Functions.Tests.Api;

/// <summary>
/// The OpenAPI document both hosts serve at /api/openapi.json: valid OpenAPI 3.1 as Microsoft.OpenApi reads and
/// validates it, with every route and method of the route table, and its reference page served beside it.
/// </summary>
public sealed class OpenApiDocumentTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task BothHostsServeAValidOpenApi31DocumentOfEveryRoute()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        await using var functions = await LoopbackHost.FunctionsAsync(environment, "key-for-functions");
        await using var serve = await LoopbackHost.ServeAsync(environment, apiKey: "key-for-serve");

        string fromFunctions = await functions.Client.GetStringAsync("api/openapi.json", Token);
        string fromServe = await serve.Client.GetStringAsync("api/openapi.json", Token);
        Assert.Equal(fromFunctions, fromServe);

        var read = OpenApiDocument.Parse(fromServe, "json", new OpenApiReaderSettings());
        Assert.True(read.Diagnostic!.Errors.Count == 0, string.Join("\n", read.Diagnostic.Errors.Select(e => $"{e.Pointer}: {e.Message}")));
        Assert.Equal(OpenApiSpecVersion.OpenApi3_1, read.Diagnostic.SpecificationVersion);
        var document = read.Document!;
        var problems = document.Validate(ValidationRuleSet.GetDefaultRuleSet())!.ToArray();
        Assert.True(problems.Length == 0, string.Join("\n", problems.Select(e => $"{e.Pointer}: {e.Message}")));

        foreach (var route in ApiRoutes.All)
        {
            Assert.True(document.Paths.TryGetValue(route.Path, out var item), $"{route.Path} is missing");
            var operation = item!.Operations![new HttpMethod(route.Method)];
            Assert.Equal(route.Name, operation.OperationId);
            foreach (var response in route.Responses)
                Assert.True(operation.Responses!.ContainsKey(response.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)), $"{route.Name}: {response.Status}");
            var pathParameters = (operation.Parameters ?? []).Where(p => p.In == ParameterLocation.Path).Select(p => p.Name).Order().ToArray();
            Assert.Equal(ApiDescription.PathParameters(route.Template).Order(), pathParameters);
            Assert.Equal(route.Access == RouteAccess.Anonymous, operation.Security is { Count: 0 });
        }
        // Nothing in the document that the table does not have.
        int operations = document.Paths.Sum(p => p.Value.Operations!.Count);
        Assert.Equal(ApiRoutes.All.Count, operations);
    }

    [Fact]
    public void TheGenerationRequestSchemaListsEveryFieldAndRefusesOthers()
    {
        using var document = JsonDocument.Parse(ApiDescription.Json);
        var schema = document.RootElement.GetProperty("components").GetProperty("schemas").GetProperty("GenerationRequest");
        var fields = schema.GetProperty("properties").EnumerateObject().Select(p => p.Name).ToHashSet();
        Assert.Superset(new HashSet<string> { "prompt", "negativePrompt", "width", "height", "images", "seed", "decoderSeed", "priorSteps", "priorTimesteps", "priorGuidance", "decoderSteps", "decoderGuidance", "priorModel", "decoderModel" }, fields);
        Assert.False(schema.GetProperty("additionalProperties").GetBoolean());
    }

    [Fact]
    public async Task TheReferencePageIsServedLocallyWithoutACdn()
    {
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false);
        await using var serve = await LoopbackHost.ServeAsync(environment, apiKey: null);
        using var page = await serve.Client.GetAsync("api/docs", Token);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        string html = await page.Content.ReadAsStringAsync(Token);
        Assert.Contains("openapi.json", html);
        Assert.DoesNotMatch(@"(src|href)\s*=\s*[""']?(https?:)?//", html);
    }
}
