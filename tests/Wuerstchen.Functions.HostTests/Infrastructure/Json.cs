using System.Text.Json;
using System.Text.Json.Nodes;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

public static class Json
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static string Serialize(object value) => JsonSerializer.Serialize(value, Options);

    public static string Text(this JsonNode? node, string property) =>
        node?[property]?.GetValue<string>() ?? throw new InvalidOperationException($"No string '{property}' in {node?.ToJsonString()}");

    public static string? TextOrNull(this JsonNode? node, string property) =>
        node?[property] is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    public static int Int(this JsonNode? node, string property) =>
        node?[property]?.GetValue<int>() ?? throw new InvalidOperationException($"No number '{property}' in {node?.ToJsonString()}");

    /// <summary>A property by name in any casing (Durable serializes custom status with the worker's defaults: PascalCase).</summary>
    public static JsonNode? Prop(this JsonNode? node, string property) =>
        node is JsonObject obj ? obj.FirstOrDefault(p => string.Equals(p.Key, property, StringComparison.OrdinalIgnoreCase)).Value : null;

    public static JsonNode[] Items(this JsonNode? node, string property) =>
        node?[property]?.AsArray().Select(n => n!).ToArray() ?? throw new InvalidOperationException($"No array '{property}' in {node?.ToJsonString()}");
}
