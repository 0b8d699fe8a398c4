using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Wuerstchen.Pipeline.Diagnostics;

namespace Wuerstchen.Workflows.Telemetry;

/// <summary>
/// The one place every host turns telemetry on: the Functions app, the CLI and <c>wuerstchen serve</c> call
/// <see cref="AddWuerstchenTelemetry"/>; a host without a generic host (the CLI) then calls
/// <see cref="StartWuerstchenTelemetry"/> once its service provider is built.
/// </summary>
public static class TelemetryRegistration
{
    public const string ServiceName = "wuerstchen";

    /// <summary>
    /// Registers OpenTelemetry for the <see cref="WuerstchenTelemetry"/> spans and metrics, and the logs, when
    /// <c>Wuerstchen:Telemetry:Exporter</c> names an exporter or <paramref name="hostExporters"/> is given (the Functions
    /// app's Azure Monitor exporter); otherwise registers nothing but the validated options, and returns null.
    /// </summary>
    /// <param name="hostExporters">The host's own exporters and instrumentation, added after the shared ones.</param>
    public static IOpenTelemetryBuilder? AddWuerstchenTelemetry(this IServiceCollection services, IConfiguration configuration,
        Action<IOpenTelemetryBuilder>? hostExporters = null)
    {
        services.AddValidatedOptions<TelemetryOptions>(configuration, TelemetryOptions.Section, o => o.Validate());
        var options = configuration.GetSection(TelemetryOptions.Section).Get<TelemetryOptions>() ?? new TelemetryOptions();
        bool exporter = options.Validate().Count == 0 && options.Enabled;
        if (!exporter && hostExporters is null)
            return null;

        var builder = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName, serviceVersion: typeof(TelemetryRegistration).Assembly.GetName().Version?.ToString()))
            .WithTracing(tracing => tracing.AddSource(WuerstchenTelemetry.Name))
            .WithMetrics(metrics => metrics.AddMeter(WuerstchenTelemetry.Name))
            .WithLogging(_ => { }, logging => logging.IncludeScopes = true);
        if (exporter && options.Exporter.Equals("Console", StringComparison.OrdinalIgnoreCase))
        {
            builder.WithTracing(tracing => tracing.AddConsoleExporter())
                .WithMetrics(metrics => metrics.AddConsoleExporter())
                .WithLogging(logging => logging.AddConsoleExporter());
        }
        else if (exporter)
        {
            builder.UseOtlpExporter(OtlpExportProtocol.Grpc, string.IsNullOrWhiteSpace(options.OtlpEndpoint) ? DefaultOtlpEndpoint() : new Uri(options.OtlpEndpoint));
        }
        hostExporters?.Invoke(builder);
        return builder;
    }

    /// <summary>
    /// Builds the tracer and meter providers where no generic host starts them (the CLI, tests); they flush and stop
    /// when the service provider is disposed. Does nothing when telemetry is off.
    /// </summary>
    public static void StartWuerstchenTelemetry(this IServiceProvider services)
    {
        _ = services.GetService<TracerProvider>();
        _ = services.GetService<MeterProvider>();
    }

    private static Uri DefaultOtlpEndpoint() =>
        Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 } endpoint ? new Uri(endpoint) : new Uri("http://localhost:4317");
}
