using System.Text.Json.Nodes;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>
/// The app settings a host of this layer runs with: every value of <c>local.settings.json.example</c> as it stands,
/// then the few that must name this machine (<see cref="MachineSpecific"/>), then additions the tests need. A test
/// asserts that nothing else changes, so the example itself is what starts.
/// </summary>
public sealed class AppSettings
{
    /// <summary>Example settings whose value is this machine's: the storage endpoints (Azurite on free ports), the model folders, the timer.</summary>
    public static readonly string[] MachineSpecific =
    [
        "AzureWebJobsStorage",
        "Wuerstchen__Storage__ConnectionString",
        "Wuerstchen__Models__Root",
        "Wuerstchen__Models__CacheRoot",
        // The example's 03:00 UTC would fire during a run at that hour; the tests invoke the timer through the admin API.
        "Wuerstchen__Training__Schedule",
    ];

    private readonly Dictionary<string, string?> _values;

    private AppSettings(Dictionary<string, string?> values) => _values = values;

    public IReadOnlyDictionary<string, string?> Values => _values;

    public static IReadOnlyDictionary<string, string> Example()
    {
        var values = JsonNode.Parse(File.ReadAllText(Repository.SettingsExample))?["Values"]?.AsObject()
                     ?? throw new InvalidOperationException("local.settings.json.example has no \"Values\".");
        return values.ToDictionary(p => p.Key, p => p.Value?.GetValue<string>() ?? "", StringComparer.Ordinal);
    }

    public static AppSettings ForThisMachine(Azurite azurite, int appStoreBlobPort, string modelRoot, string modelCache)
    {
        var values = Example().ToDictionary(p => p.Key, p => (string?)p.Value, StringComparer.Ordinal);
        values["AzureWebJobsStorage"] = azurite.ConnectionString;
        values["Wuerstchen__Storage__ConnectionString"] = azurite.ConnectionStringWithBlobPort(appStoreBlobPort);
        values["Wuerstchen__Models__Root"] = modelRoot;
        values["Wuerstchen__Training__Schedule"] = "0 0 0 29 2 *";
        values["Wuerstchen__Models__CacheRoot"] = modelCache;
        return new AppSettings(values);
    }

    public string this[string name] => _values[name] ?? "";

    public AppSettings With(string name, string? value)
    {
        var values = new Dictionary<string, string?>(_values, StringComparer.Ordinal) { [name] = value };
        return new AppSettings(values);
    }

    public AppSettings Without(string name)
    {
        var values = new Dictionary<string, string?>(_values, StringComparer.Ordinal);
        values.Remove(name);
        return new AppSettings(values);
    }

    public AppSettings WithAll(IEnumerable<KeyValuePair<string, string?>> more)
    {
        var values = new Dictionary<string, string?>(_values, StringComparer.Ordinal);
        foreach (var (key, value) in more)
            values[key] = value;
        return new AppSettings(values);
    }
}
