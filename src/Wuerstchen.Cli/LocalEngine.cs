using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wuerstchen.Pipeline.Generation;
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

    private LocalEngine(ServiceProvider services, DurableTaskTestHost durable, CancellationTokenSource stopping, string? priorModel, string? decoderModel)
    {
        _stopping = stopping;
        Services = services;
        Durable = durable;
        PriorModel = priorModel;
        DecoderModel = decoderModel;
    }

    public ServiceProvider Services { get; }

    public DurableTaskTestHost Durable { get; }

    public DurableTaskClient Client => Durable.Client;

    public IBlobStore Store => Services.GetRequiredService<IBlobStore>();

    /// <summary>The Stage C model name to put in requests (a folder given on the command line becomes its full path).</summary>
    public string? PriorModel { get; }

    public string? DecoderModel { get; }

    private const string SidecarLogLevelVariable = "Logging__LogLevel__Default";

    public static string DefaultModelsRoot() =>
        Environment.GetEnvironmentVariable("HF_HOME") is { Length: > 0 } home
            ? home
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface");

    public static string DefaultStore() =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } cache
            ? cache
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "wuerstchen", "store");

    /// <summary>
    /// Starts the engine over the settings: the CLI's defaults, then <c>Wuerstchen__Section__Key</c> environment
    /// variables (for settings without an option), then the command's options and <paramref name="extra"/>; every
    /// section is validated before anything runs (<see cref="Microsoft.Extensions.Options.OptionsValidationException"/>).
    /// Running stages stop at their next step when <paramref name="cancellationToken"/> is cancelled (Ctrl+C) or the
    /// engine is disposed.
    /// </summary>
    /// <param name="configure">More services over the same settings (the HTTP API's, for <c>serve</c>).</param>
    public static async Task<LocalEngine> StartAsync(EngineSettings settings, IDictionary<string, string?>? extra, CancellationToken cancellationToken,
        Action<IServiceCollection, IConfiguration>? configure = null)
    {
        var defaults = new Dictionary<string, string?>
        {
            ["Wuerstchen:Models:CacheRoot"] = Path.Combine(Path.GetDirectoryName(DefaultStore())!, "models"),
            ["Wuerstchen:Workflows:Retry:MaxAttempts"] = "2",
            ["Wuerstchen:Workflows:Retry:FirstInterval"] = "00:00:01",
            ["Wuerstchen:Workflows:ProgressInterval"] = "00:00:00.200",
        };
        var values = new Dictionary<string, string?>
        {
            ["Wuerstchen:Models:Root"] = settings.ModelsRoot ?? DefaultModelsRoot(),
            ["Wuerstchen:Models:Device"] = settings.Device,
            ["Wuerstchen:Models:Precision"] = settings.Precision,
        };
        if (settings.StorageConnection is { } connection)
        {
            values["Wuerstchen:Storage:Kind"] = "AzureBlob";
            values["Wuerstchen:Storage:ConnectionString"] = connection;
            values["Wuerstchen:Storage:Container"] = settings.Container;
        }
        else
        {
            values["Wuerstchen:Storage:Kind"] = "FileSystem";
            values["Wuerstchen:Storage:RootPath"] = Path.GetFullPath(settings.StoreDirectory ?? DefaultStore());
        }
        string? prior = ModelName(settings.PriorModel, values);
        string? decoder = ModelName(settings.DecoderModel, values);
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
            values[key] = value;

        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(defaults)
            .AddInMemoryCollection(SettingsFromEnvironment())
            .AddInMemoryCollection(values)
            .Build();
        var services = new ServiceCollection();
        services.AddLogging(logging =>
        {
            if (settings.Verbose)
                logging.AddSimpleConsole(console => console.SingleLine = true).SetMinimumLevel(LogLevel.Information);
            else
                logging.SetMinimumLevel(LogLevel.None);
        });
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
        var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var durable = await EmbeddedDurableEngine.StartAsync(registry => registry.AddWuerstchenWorkflows(provider, stopping.Token),
            provider.GetRequiredService<ILoggerFactory>(), cancellationToken);
        return new LocalEngine(provider, durable, stopping, prior, decoder);
    }

    /// <summary>The <c>Wuerstchen__Section__Key</c> environment variables, as the Functions app reads its app settings.</summary>
    private static Dictionary<string, string?> SettingsFromEnvironment()
    {
        var settings = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
        {
            if (variable.Key is string name && name.StartsWith("Wuerstchen__", StringComparison.OrdinalIgnoreCase))
                settings[name.Replace("__", ":", StringComparison.Ordinal)] = variable.Value as string;
        }
        return settings;
    }

    /// <summary>A model option that names an existing folder is registered under its full path; a name stays a name.</summary>
    private static string? ModelName(string? option, Dictionary<string, string?> values)
    {
        if (option is null || !Directory.Exists(option))
            return option;
        string path = Path.GetFullPath(option);
        values[$"Wuerstchen:Models:Paths:{path}"] = path;
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
