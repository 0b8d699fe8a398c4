using System.Text.Json.Nodes;
using Azure.Storage.Queues;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>The host.json the host reads: the copy in the app's build output.</summary>
public static class HostJson
{
    public static string Path => System.IO.Path.Combine(Repository.AppOutput, "host.json");

    public static JsonNode Read() => JsonNode.Parse(File.ReadAllText(Path))!;

    public static JsonNode Durable => Read()["extensions"]!["durableTask"]!;

    public static JsonNode Queues => Read()["extensions"]!["queues"]!;

    /// <summary>How producers must encode bulk messages: <c>extensions.queues.messageEncoding</c> (base64 or none).</summary>
    public static QueueMessageEncoding QueueMessageEncoding() => Queues.TextOrNull("messageEncoding")?.ToLowerInvariant() switch
    {
        null or "base64" => Azure.Storage.Queues.QueueMessageEncoding.Base64,
        "none" => Azure.Storage.Queues.QueueMessageEncoding.None,
        var other => throw new InvalidOperationException($"host.json names an unknown messageEncoding '{other}'."),
    };
}
