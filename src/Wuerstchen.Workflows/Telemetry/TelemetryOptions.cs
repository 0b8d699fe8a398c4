namespace Wuerstchen.Workflows.Telemetry;

/// <summary>
/// <c>Wuerstchen:Telemetry</c>: where the CLI (and <c>wuerstchen serve</c>) send traces, metrics and logs. Off by
/// default. The Functions app exports to Azure Monitor whenever <c>APPLICATIONINSIGHTS_CONNECTION_STRING</c> is set,
/// and to this exporter as well when one is named.
/// </summary>
public sealed class TelemetryOptions
{
    public const string Section = "Wuerstchen:Telemetry";

    /// <summary><c>None</c> (default), <c>Console</c> (spans, metrics and logs printed to standard output) or <c>Otlp</c> (an OpenTelemetry collector).</summary>
    public string Exporter { get; set; } = "None";

    /// <summary>The OTLP collector, e.g. <c>http://localhost:4317</c>; unset: the exporter's own default (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, else localhost:4317).</summary>
    public string? OtlpEndpoint { get; set; }

    public bool Enabled => !string.Equals(Exporter, "None", StringComparison.OrdinalIgnoreCase);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Exporter is not { } e || !(e.Equals("None", StringComparison.OrdinalIgnoreCase) || e.Equals("Console", StringComparison.OrdinalIgnoreCase)
                || e.Equals("Otlp", StringComparison.OrdinalIgnoreCase)))
            errors.Add($"{Section}:Exporter must be None, Console or Otlp, not '{Exporter}'.");
        if (!string.IsNullOrWhiteSpace(OtlpEndpoint) && !Uri.TryCreate(OtlpEndpoint, UriKind.Absolute, out _))
            errors.Add($"{Section}:OtlpEndpoint must be an absolute URL such as http://localhost:4317, not '{OtlpEndpoint}'.");
        return errors;
    }
}
