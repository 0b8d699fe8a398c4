using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows;
using Wuerstchen.Workflows.Embedded;

namespace Wuerstchen.Cli;

/// <summary>
/// The Functions app's orchestrations and activities on the embedded Durable Task engine (in memory, in this process),
/// over the local store or Azure Blob Storage.
/// </summary>
public sealed class LocalEngine : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopping;

    private LocalEngine(ServiceProvider services, DurableTaskTestHost durable, CancellationTokenSource stopping, IConfiguration configuration,
        string? priorModel, string? decoderModel)
    {
        _stopping = stopping;
        Services = services;
        Durable = durable;
        Configuration = configuration;
        PriorModel = priorModel;
        DecoderModel = decoderModel;
    }

    public ServiceProvider Services { get; }

    public DurableTaskTestHost Durable { get; }

    public DurableTaskClient Client => Durable.Client;

    public IBlobStore Store => Services.GetRequiredService<IBlobStore>();

    /// <summary>The settings the engine runs with (<see cref="CliConfiguration"/>).</summary>
    public IConfiguration Configuration { get; }

    public string ModelsRoot => CliConfiguration.ModelsRoot(Configuration);

    /// <summary>The Stage C model name to put in requests (a folder given on the command line becomes its full path).</summary>
    public string? PriorModel { get; }

    public string? DecoderModel { get; }

    private const string SidecarLogLevelVariable = "Logging__LogLevel__Default";

    /// <summary>
    /// Starts the engine over the settings (<see cref="CliConfiguration"/>: the CLI's defaults, a settings file,
    /// <c>Wuerstchen__Section__Key</c> environment variables, the command's options, then <paramref name="extra"/>);
    /// every section is validated before anything runs (<see cref="Microsoft.Extensions.Options.OptionsValidationException"/>).
    /// Running stages stop at their next step when <paramref name="cancellationToken"/> is cancelled (Ctrl+C) or the
    /// engine is disposed.
    /// </summary>
    /// <param name="configure">More services over the same settings (the HTTP API's, for <c>serve</c>).</param>
    public static async Task<LocalEngine> StartAsync(EngineSettings settings, IDictionary<string, string?>? extra, CancellationToken cancellationToken,
        Action<IServiceCollection, IConfiguration>? configure = null)
    {
        var values = new Dictionary<string, string?>();
        string? prior = ModelName(settings.PriorModelName, values);
        string? decoder = ModelName(settings.DecoderModelName, values);
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
            values[key] = value;

        var configuration = CliConfiguration.Build(settings, values);
        var services = new ServiceCollection();
        services.AddLogging(logging => ConfigureLogging(logging, settings.Verbose));
        services.AddWuerstchenWorkflows(configuration);
        configure?.Invoke(services, configuration);
        var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        try
        {
            provider.ValidateSettings();
            _ = provider.GetRequiredService<IBlobStore>();
        }
        catch
        {
            await provider.DisposeAsync();
            throw;
        }

        // The engine's gRPC sidecar is a web host of its own that logs to the console from configuration;
        // keep its chatter out of the command's output unless asked for.
        if (Environment.GetEnvironmentVariable(SidecarLogLevelVariable) is null)
            Environment.SetEnvironmentVariable(SidecarLogLevelVariable, settings.Verbose ? "Information" : "Warning");
        // …and onto standard error, like every log line: standard output holds the command's results.
        Environment.SetEnvironmentVariable("Logging__Console__LogToStandardErrorThreshold", "Trace");
        var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var durable = await EmbeddedDurableEngine.StartAsync(registry => registry.AddWuerstchenWorkflows(provider, stopping.Token),
            provider.GetRequiredService<ILoggerFactory>(), cancellationToken);
        return new LocalEngine(provider, durable, stopping, configuration, prior, decoder);
    }

    /// <summary>With <c>--verbose</c>, logs go to standard error (standard output holds the command's results); otherwise none.</summary>
    public static void ConfigureLogging(ILoggingBuilder logging, bool verbose)
    {
        if (verbose)
        {
            logging.AddSimpleConsole(console => console.SingleLine = true).SetMinimumLevel(LogLevel.Information);
            logging.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
        }
        else
        {
            logging.SetMinimumLevel(LogLevel.None);
        }
    }

    /// <summary>A model option that names an existing folder is registered under its full path; a name stays a name.</summary>
    private static string? ModelName(string? option, Dictionary<string, string?> values)
    {
        if (option is null || !Directory.Exists(option))
            return option;
        string path = Path.GetFullPath(option);
        values[$"{ModelOptions.Section}:Paths:{path}"] = path;
        return path;
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await Durable.DisposeAsync();
        await Services.DisposeAsync();
        _stopping.Dispose();
    }
}
