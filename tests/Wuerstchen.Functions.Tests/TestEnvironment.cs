using System.Net.Sockets;
using Microsoft.DurableTask.Client;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Api;
using Wuerstchen.Functions;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Functions.Training;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows;
using Wuerstchen.Workflows.Embedded;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Functions.Tests;

/// <summary>
/// The Functions app's services over the tiny fixture models, a fresh Azurite container (or a temp folder) and the real
/// Durable Task engine in process; orchestrations and activities are the production ones.
/// </summary>
public sealed class TestEnvironment : IAsyncDisposable
{
    private readonly TempDirectory _temp;
    private readonly string? _container;

    private TestEnvironment(TempDirectory temp, ServiceProvider services, DurableTaskTestHost durable, string? container)
    {
        _temp = temp;
        Services = services;
        Durable = durable;
        _container = container;
    }

    public ServiceProvider Services { get; }

    public DurableTaskTestHost Durable { get; }

    public DurableTaskClient Client => Durable.Client;

    public IBlobStore Store => Services.GetRequiredService<IBlobStore>();

    public GenerationHttpFunctions Http => new(Services.GetRequiredService<GenerationApi>());

    public FineTuneHttpFunctions FineTunes => new(Services.GetRequiredService<FineTuneApi>());

    public GalleryHttpFunctions Gallery => new(Services.GetRequiredService<GalleryApi>());

    public const string AzuriteConnectionString = "UseDevelopmentStorage=true";

    /// <param name="useAzurite">Azure Blob Storage on Azurite; otherwise the local file-system store.</param>
    /// <param name="configure">Changes to the services, e.g. a store that fails on purpose.</param>
    public static async Task<TestEnvironment> StartAsync(bool useAzurite = true, IDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configure = null, Action<Microsoft.DurableTask.DurableTaskRegistry, IServiceProvider>? register = null)
    {
        if (useAzurite)
            RequireAzurite();
        var temp = new TempDirectory();
        string models = LinkFixtureModels(temp);
        string? container = useAzurite ? "test-" + Guid.NewGuid().ToString("N")[..20] : null;
        var values = new Dictionary<string, string?>
        {
            ["Wuerstchen:Storage:Kind"] = useAzurite ? "AzureBlob" : "FileSystem",
            ["Wuerstchen:Storage:ConnectionString"] = useAzurite ? AzuriteConnectionString : null,
            ["Wuerstchen:Storage:Container"] = container,
            ["Wuerstchen:Storage:RootPath"] = useAzurite ? null : temp.File("store"),
            ["Wuerstchen:Models:Root"] = models,
            ["Wuerstchen:Models:CacheRoot"] = temp.File("model-cache"),
            ["Wuerstchen:Workflows:Retry:MaxAttempts"] = "3",
            ["Wuerstchen:Workflows:Retry:FirstInterval"] = "00:00:00.100",
            ["Wuerstchen:Workflows:ProgressInterval"] = "00:00:00.050",
            ["Wuerstchen:Bulk:BatchSize"] = "3",
            ["Wuerstchen:Bulk:MaxParallelism"] = "2",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
            values[key] = value;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();

        var services = new ServiceCollection();
        services.AddLogging(logging => logging.SetMinimumLevel(LogLevel.Warning));
        services.AddWuerstchenWorkflows(configuration);
        services.AddWuerstchenApi(configuration);
        configure?.Invoke(services);
        var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true });
        provider.ValidateSettings();

        var durable = await EmbeddedDurableEngine.StartAsync(registry =>
        {
            registry.AddWuerstchenWorkflows(provider);
            register?.Invoke(registry, provider);
        });
        return new TestEnvironment(temp, provider, durable, container);
    }

    /// <summary>A model root where the published names point at the fixture models, as a deployment's root would.</summary>
    private static string LinkFixtureModels(TempDirectory temp) => FixtureModelRoot.Create(temp.File("models"));

    public static void RequireAzurite()
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", 10000);
        }
        catch (SocketException)
        {
            const string message = "Azurite is not listening on 127.0.0.1:10000; run the tests with ./scripts/test.sh, which starts it.";
            if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
                Assert.Fail(message);
            Assert.Skip(message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Durable.DisposeAsync();
        if (_container is not null)
            await new Azure.Storage.Blobs.BlobContainerClient(AzuriteConnectionString, _container).DeleteIfExistsAsync();
        await Services.DisposeAsync();
        _temp.Dispose();
    }
}
