using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Schema;
using Microsoft.AspNetCore.Mvc;

namespace Wuerstchen.Api;

/// <summary>
/// The OpenAPI 3.1 document of the HTTP API, generated from the route table (<see cref="ApiRoutes.All"/>): every route
/// and method, its parameters, its request body and each answer, with JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses)
/// exported from the very types the handlers read and write, in the web JSON conventions both hosts use.
/// </summary>
public static class ApiDescription
{
    public const string Version = "1.0.0";
    public const string KeyHeaderScheme = "functionKey";
    public const string KeyQueryScheme = "functionKeyQuery";

    /// <summary>The web JSON conventions without the body reader's bounded-list converter, which the schema exporter cannot see through.</summary>
    private static readonly JsonSerializerOptions SchemaJson = new(JsonSerializerDefaults.Web) { TypeInfoResolver = new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver() };

    private static readonly Lazy<string> Text = new(() => Build().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>The document as JSON text.</summary>
    public static string Json => Text.Value;

    public static IActionResult Result() => new ContentResult { Content = Json, ContentType = "application/json; charset=utf-8", StatusCode = 200 };

    public static JsonObject Build()
    {
        var schemas = new SortedDictionary<string, JsonNode>(StringComparer.Ordinal);
        var paths = new JsonObject();
        foreach (var group in ApiRoutes.All.GroupBy(r => r.Path))
        {
            var item = new JsonObject();
            foreach (var route in group)
                item[route.Method.ToLowerInvariant()] = Operation(route, schemas);
            paths[group.Key] = item;
        }
        var components = new JsonObject();
        foreach (var (name, schema) in schemas)
            components[name] = schema;

        return new JsonObject
        {
            ["openapi"] = "3.1.0",
            ["info"] = new JsonObject
            {
                ["title"] = "Würstchen Functions API",
                ["version"] = Version,
                ["summary"] = "Text-to-image generation and Stage C fine-tuning with Würstchen v2.",
                ["description"] = "Served by the Azure Functions app and by `wuerstchen serve`, from one route table. Errors are RFC 7807 problem details. " +
                                  "Routes that need the API key take it as the `x-functions-key` header or the `code` query parameter.",
                ["license"] = new JsonObject { ["name"] = "MIT", ["identifier"] = "MIT" },
            },
            ["servers"] = new JsonArray(new JsonObject { ["url"] = "/" }),
            ["security"] = new JsonArray(
                new JsonObject { [KeyHeaderScheme] = new JsonArray() },
                new JsonObject { [KeyQueryScheme] = new JsonArray() }),
            ["paths"] = paths,
            ["components"] = new JsonObject
            {
                ["schemas"] = components,
                ["securitySchemes"] = new JsonObject
                {
                    [KeyHeaderScheme] = new JsonObject { ["type"] = "apiKey", ["in"] = "header", ["name"] = ApiKeys.Header },
                    [KeyQueryScheme] = new JsonObject { ["type"] = "apiKey", ["in"] = "query", ["name"] = ApiKeys.Query },
                },
            },
        };
    }

    private static JsonObject Operation(ApiRoute route, SortedDictionary<string, JsonNode> schemas)
    {
        var operation = new JsonObject
        {
            ["operationId"] = route.Name,
            ["summary"] = route.Summary,
            ["tags"] = new JsonArray(Tag(route)),
        };
        var parameters = new JsonArray();
        foreach (string name in PathParameters(route.Template))
        {
            parameters.Add(new JsonObject
            {
                ["name"] = name,
                ["in"] = "path",
                ["required"] = true,
                ["schema"] = route.Template.Contains($"{{{name}:int}}") ? new JsonObject { ["type"] = "integer", ["minimum"] = 0 } : new JsonObject { ["type"] = "string" },
            });
        }
        foreach (var query in route.Query ?? [])
            parameters.Add(new JsonObject { ["name"] = query.Name, ["in"] = "query", ["description"] = query.Description, ["schema"] = new JsonObject { ["type"] = query.Type } });
        foreach (var header in route.Headers ?? [])
            parameters.Add(new JsonObject { ["name"] = header.Name, ["in"] = "header", ["description"] = header.Description, ["schema"] = new JsonObject { ["type"] = "string" } });
        if (parameters.Count > 0)
            operation["parameters"] = parameters;
        if (route.RequestBody is { } body)
        {
            operation["requestBody"] = new JsonObject
            {
                ["required"] = route.Name != "RedecodeGeneration",
                ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = Reference(body, schemas) } },
            };
        }
        if (route.Access == RouteAccess.Anonymous)
            operation["security"] = new JsonArray();
        var responses = new JsonObject();
        foreach (var response in route.Responses.OrderBy(r => r.Status))
        {
            var answer = new JsonObject { ["description"] = response.Description };
            if (response.Body is not null || response.ContentType is not null)
            {
                JsonNode schema = response.Body is { } type ? Reference(type, schemas)
                    : response.ContentType is "image/png" ? new JsonObject { ["type"] = "string", ["contentMediaType"] = "image/png" }
                    : response.ContentType == "application/json" ? new JsonObject { ["type"] = "object" }
                    : new JsonObject { ["type"] = "string" };
                answer["content"] = new JsonObject { [response.ContentType ?? "application/json"] = new JsonObject { ["schema"] = schema } };
            }
            responses[response.Status.ToString(System.Globalization.CultureInfo.InvariantCulture)] = answer;
        }
        operation["responses"] = responses;
        return operation;
    }

    private static string Tag(ApiRoute route) => route.Template switch
    {
        var t when t.StartsWith("api/generations", StringComparison.Ordinal) => "Generations",
        var t when t.StartsWith("api/bulk", StringComparison.Ordinal) => "Bulk jobs",
        var t when t.StartsWith("api/finetunes", StringComparison.Ordinal) || t.StartsWith(ApiRoutes.Models, StringComparison.Ordinal) => "Fine-tuning and models",
        var t when t.StartsWith("api/health", StringComparison.Ordinal) => "Health",
        var t when t.StartsWith("api/", StringComparison.Ordinal) => "API description",
        _ => "Web app",
    };

    /// <summary>The names of a template's path parameters (<c>{index:int}</c> → <c>index</c>); the root's optional empty segment is none.</summary>
    public static IEnumerable<string> PathParameters(string template) =>
        template == ApiRoutes.WebAppRoot ? [] :
        template.Split('/').Where(s => s.StartsWith('{')).Select(s => s.Trim('{', '}', '*').Split(':')[0].TrimEnd('?'));

    private static JsonObject Reference(Type type, SortedDictionary<string, JsonNode> schemas)
    {
        string name = type.Name;
        if (!schemas.ContainsKey(name))
        {
            schemas[name] = JsonSchemaExporter.GetJsonSchemaAsNode(SchemaJson, type, new JsonSchemaExporterOptions
            {
                TreatNullObliviousAsNonNullable = true,
            });
        }
        return new JsonObject { ["$ref"] = $"#/components/schemas/{name}" };
    }
}
