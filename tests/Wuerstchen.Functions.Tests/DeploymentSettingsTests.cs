using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Generation.Batching;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows;
using Wuerstchen.Workflows.Bulk;

namespace Wuerstchen.Functions.Tests;

/// <summary>The settings the Bicep templates give the container (infra/app-settings.json) against what the app reads.</summary>
public sealed class DeploymentSettingsTests
{
    private static readonly Dictionary<string, Type> OptionSections = new(StringComparer.Ordinal)
    {
        ["Storage"] = typeof(StorageOptions),
        ["Models"] = typeof(ModelOptions),
        ["Limits"] = typeof(GenerationLimits),
        ["Workflows"] = typeof(WorkflowOptions),
        ["Bulk"] = typeof(BulkOptions),
        ["Api"] = typeof(Wuerstchen.Api.ApiOptions),
        ["Training"] = typeof(Wuerstchen.Pipeline.Training.TrainingOptions),
        ["Retention"] = typeof(Wuerstchen.Workflows.Retention.RetentionOptions),
        ["Batching"] = typeof(BatchingOptions),
    };

    internal static string RepositoryFile(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Wuerstchen.Functions.sln")))
                return Path.Combine(dir.FullName, relative);
        }
        throw new InvalidOperationException("The repository root was not found above the test binaries.");
    }

    private static IReadOnlyList<string> TemplateSettings() =>
        JsonSerializer.Deserialize<string[]>(File.ReadAllText(RepositoryFile("infra/app-settings.json")))!;

    [Fact]
    public void EveryTemplateSettingIsOneTheAppReads()
    {
        foreach (string name in TemplateSettings())
        {
            string[] parts = name.Split("__");
            if (parts[0] == "AzureFunctionsJobHost")
            {
                // An override of a host.json setting: it must name one host.json has.
                var node = JsonNode.Parse(File.ReadAllText(RepositoryFile("host.json")));
                foreach (string part in parts[1..])
                    node = node is JsonObject o ? o.FirstOrDefault(p => string.Equals(p.Key, part, StringComparison.OrdinalIgnoreCase)).Value : null;
                Assert.True(node is JsonValue, $"{name}: host.json has no setting {string.Join('.', parts[1..])}");
                continue;
            }
            if (parts[0] != "Wuerstchen")
            {
                Assert.Contains(name, HostSettingsTheAppReads());
                continue;
            }
            Type? type = parts.Length == 3 ? OptionSections.GetValueOrDefault(parts[1]) : null;
            Assert.True(type is not null, $"{name}: no options section '{parts[1]}'");
            Assert.True(type.GetProperty(parts[2], BindingFlags.Public | BindingFlags.Instance)?.CanWrite == true,
                $"{name}: {type.Name} has no settable property '{parts[2]}', so the app would ignore it");
        }
    }

    [Fact]
    public void EverySettingTheAppReadsByNameIsProvidedByTheTemplates()
    {
        var provided = TemplateSettings();
        foreach (string name in HostSettingsTheAppReads())
            Assert.Contains(name, provided);
        // Settings without a usable default must come from the deployment.
        foreach (string required in new[] { "Wuerstchen__Storage__Kind", "Wuerstchen__Models__Root" })
            Assert.Contains(required, provided);
    }

    [Fact]
    public void TheTemplateSettingsAloneGiveAnAppThatStarts()
    {
        var values = TemplateSettings().ToDictionary(n => n.Replace("__", ":"), n => (string?)ExampleValue(n));
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var services = new ServiceCollection().AddLogging().AddWuerstchenWorkflows(configuration).BuildServiceProvider();

        var storage = services.GetRequiredService<IOptions<StorageOptions>>().Value;
        Assert.Empty(storage.Validate());
        Assert.Equal(StorageKind.AzureBlob, storage.Kind);
        Assert.Empty(services.GetRequiredService<IOptions<ModelOptions>>().Value.Validate());
        Assert.Equal("generation-jobs", services.GetRequiredService<IOptions<BulkOptions>>().Value.QueueName);
        var batching = services.GetRequiredService<IOptions<BatchingOptions>>().Value;
        Assert.Empty(batching.Validate());
        Assert.Equal((4, TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(100), 8),
            (batching.MaxBatchImages, batching.MaxWait, batching.CohortWait, batching.MaxConcurrentStageActivities));
    }

    /// <summary>Names the host reads: the identity-based AzureWebJobsStorage connection, host.json's %tokens%, the worker runtime, telemetry.</summary>
    private static IReadOnlyList<string> HostSettingsTheAppReads()
    {
        var names = new List<string> { "FUNCTIONS_WORKER_RUNTIME", "APPLICATIONINSIGHTS_CONNECTION_STRING" };
        string hostJson = File.ReadAllText(RepositoryFile("host.json"));
        names.AddRange(Regex.Matches(hostJson, "%([A-Za-z0-9_:]+)%").Select(m => m.Groups[1].Value.Replace(":", "__")));

        // Binding expressions (%Setting%) in trigger attributes resolve from app settings only, never from defaults.
        var parameters = typeof(Program).Assembly.GetTypes().SelectMany(t => t.GetMethods()).SelectMany(m => m.GetParameters()).ToArray();
        foreach (var queue in parameters.Select(p => p.GetCustomAttribute<QueueTriggerAttribute>()).OfType<QueueTriggerAttribute>())
        {
            names.Add(Regex.Match(queue.QueueName, "%(.+)%").Groups[1].Value.Replace(":", "__"));
            names.AddRange(new[] { "accountName", "credential", "clientId" }.Select(p => $"{queue.Connection}__{p}"));
        }
        foreach (var timer in parameters.Select(p => p.GetCustomAttribute<TimerTriggerAttribute>()).OfType<TimerTriggerAttribute>())
        {
            // A fixed schedule (such as the retention timer's hourly one) reads no setting.
            if (Regex.Match(timer.Schedule, "%(.+)%") is { Success: true } setting)
                names.Add(setting.Groups[1].Value.Replace(":", "__"));
        }
        return names.Distinct().ToArray();
    }

    private static string ExampleValue(string name) => name switch
    {
        "Wuerstchen__Storage__Kind" => "AzureBlob",
        "Wuerstchen__Storage__ServiceUri" => "https://account.blob.core.windows.net",
        "Wuerstchen__Storage__ManagedIdentityClientId" => "00000000-0000-0000-0000-000000000001",
        "Wuerstchen__Storage__Container" => "wuerstchen",
        "Wuerstchen__Models__Root" => "/mnt/models",
        "Wuerstchen__Models__Device" => "cuda",
        "Wuerstchen__Models__Precision" => "float16",
        "Wuerstchen__Models__CacheRoot" => "/tmp/wuerstchen-models",
        "Wuerstchen__Models__CacheMaxGiB" => "4",
        "Wuerstchen__Bulk__QueueName" => "generation-jobs",
        // As infra/modules/functionApp.bicep sets them on the T4.
        "Wuerstchen__Batching__MaxBatchImages" => "4",
        "Wuerstchen__Batching__MaxWait" => "00:00:00.020",
        "Wuerstchen__Batching__CohortWait" => "00:00:00.100",
        "Wuerstchen__Batching__MaxConcurrentStageActivities" => "8",
        "AzureFunctionsJobHost__extensions__durableTask__maxConcurrentActivityFunctions" => "12",
        _ => "value",
    };
}
