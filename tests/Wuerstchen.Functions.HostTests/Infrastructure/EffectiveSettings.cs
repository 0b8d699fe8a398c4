using System.Text.Json.Nodes;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>
/// host.json against the options the host says it runs with (it logs them at start-up): a setting the host does not
/// know — a misspelt key, which it ignores without a word — or a value it does not use is a difference.
/// </summary>
public static class EffectiveSettings
{
    private const string DurableMarker = "Durable extension configuration loaded: ";

    /// <summary>The Durable extension's configuration as it logged it ("Durable extension configuration loaded: {…}. HubName: …").</summary>
    public static (JsonNode Options, string HubName) Durable(IEnumerable<LogEntry> entries)
    {
        var entry = entries.First(e => e.Message.StartsWith(DurableMarker, StringComparison.Ordinal));
        string rest = entry.Message[DurableMarker.Length..];
        int end = rest.IndexOf(". HubName: ", StringComparison.Ordinal);
        string hub = rest[(end + ". HubName: ".Length)..].Split('.')[0];
        return (JsonNode.Parse(rest[..end])!, hub);
    }

    /// <summary>One of the option sets the host logs at start-up as "{Name}\n{json}" (QueuesOptions, DurableTaskOptions, …).</summary>
    public static JsonNode Options(IEnumerable<LogEntry> entries, string name) =>
        JsonNode.Parse(entries.First(e => e.Message.StartsWith(name + "\n{", StringComparison.Ordinal)).Message[(name.Length + 1)..])!;

    public static IReadOnlyList<string> Differences(string path, JsonNode? configured, JsonNode? effective)
    {
        var problems = new List<string>();
        Walk(path, configured, effective, problems);
        return problems;
    }

    private static void Walk(string path, JsonNode? configured, JsonNode? effective, List<string> problems)
    {
        if (configured is JsonObject section)
        {
            if (effective is not JsonObject known)
            {
                problems.Add($"{path}: the host has no such section");
                return;
            }
            foreach (var (key, value) in section)
            {
                var match = known.FirstOrDefault(p => string.Equals(p.Key, key, StringComparison.OrdinalIgnoreCase));
                if (match.Key is null)
                    problems.Add($"{path}.{key}: not a setting the host knows, so it is ignored");
                else
                    Walk($"{path}.{key}", value, match.Value, problems);
            }
            return;
        }
        string wanted = Scalar(configured), actual = Scalar(effective);
        if (!string.Equals(wanted, actual, StringComparison.OrdinalIgnoreCase))
            problems.Add($"{path}: host.json says {wanted}, the host runs with {actual}");
    }

    private static string Scalar(JsonNode? node) => node switch
    {
        null => "null",
        JsonValue value when value.TryGetValue<string>(out var text) => text,
        _ => node.ToJsonString(),
    };
}
