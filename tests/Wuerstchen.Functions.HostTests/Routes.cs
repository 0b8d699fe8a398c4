namespace Wuerstchen.Functions.HostTests;

/// <summary>One HTTP route of the app as a client calls it: a request that reaches the function and what the function is.</summary>
/// <param name="Method">The HTTP method.</param>
/// <param name="Path">The path under <c>/api/</c>, with real values in place of the route's parameters.</param>
/// <param name="Function">The function the host serves it with (its key is the one that opens it).</param>
/// <param name="Anonymous">Served without a key (the platform's probes send none).</param>
/// <param name="Body">A JSON body, for routes that read one.</param>
public sealed record Route(string Method, string Path, string Function, bool Anonymous = false, string? Body = null)
{
    public override string ToString() => $"{Method} /api/{Path}";
}

/// <summary>
/// Every route the app serves. <see cref="HttpKeyTests"/> checks each one under the host (401 without a key, answered by
/// the app with its key) and fails when the host lists an HTTP function that is missing here: a new route is one line.
/// </summary>
public static class Routes
{
    public const string UnknownGeneration = "gen-00000000000000000000000000000000";
    public const string UnknownFineTune = "ft-000000000000000000000000";

    public static readonly Route[] All =
    [
        new("POST", "generations", "StartGeneration", Body: "{}"),
        new("GET", $"generations/{UnknownGeneration}", "GetGeneration"),
        new("GET", $"generations/{UnknownGeneration}/images/0", "GetGenerationImage"),
        new("POST", $"generations/{UnknownGeneration}/redecode", "RedecodeGeneration", Body: "{}"),
        new("DELETE", $"generations/{UnknownGeneration}", "CancelGeneration"),
        new("POST", "finetunes", "StartFineTune", Body: "{}"),
        new("GET", $"finetunes/{UnknownFineTune}", "GetFineTune"),
        new("GET", $"finetunes/{UnknownFineTune}/grid", "GetFineTuneGrid"),
        new("DELETE", $"finetunes/{UnknownFineTune}", "CancelFineTune"),
        new("GET", "models", "ListModels"),
        // The container platform's probes and the health report: anonymous (the platform sends no key).
        new("GET", "health/live", "HealthLive", Anonymous: true),
        new("GET", "health/startup", "HealthStartup", Anonymous: true),
        new("GET", "health/ready", "HealthReady", Anonymous: true),
        new("GET", "health", "Health", Anonymous: true),
    ];

    public static Route Named(string display) => All.Single(r => r.ToString() == display);

    public static TheoryData<string> Cases => new(All.Select(r => r.ToString()));
}
