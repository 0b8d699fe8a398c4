using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Tests;
using Wuerstchen.Workflows;

namespace Wuerstchen.Functions.Tests;

/// <summary>The app refuses to start on a setting it cannot work with, and says which setting.</summary>
public sealed class SettingsValidationTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>The Functions app's services on a generic host, as Program.cs registers them.</summary>
    private IHost Build(IDictionary<string, string?> overrides)
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        var values = new Dictionary<string, string?>
        {
            ["Wuerstchen:Storage:Kind"] = "FileSystem",
            ["Wuerstchen:Storage:RootPath"] = _temp.File("store"),
            ["Wuerstchen:Models:Root"] = _temp.File("models"),
            // The settings the triggers name must be app settings (TriggerSettings); the example settings carry them.
            ["Wuerstchen:Bulk:QueueName"] = "generation-jobs",
            ["Wuerstchen:Training:Schedule"] = "0 0 3 * * *",
        };
        foreach (var (key, value) in overrides)
        {
            if (value is null)
                values.Remove(key);
            else
                values[key] = value;
        }
        builder.Configuration.AddInMemoryCollection(values);
        builder.Logging.SetMinimumLevel(LogLevel.None);
        builder.Services.AddWuerstchenWorkflows(builder.Configuration);
        builder.Services.AddWuerstchenApi(builder.Configuration);
        builder.Services.AddWuerstchenTriggerSettings(builder.Configuration);
        return builder.Build();
    }

    public static TheoryData<string, string> BadSettings => new()
    {
        { "Wuerstchen:Api:LinkLifetime", "8.00:00:00" },
        { "Wuerstchen:Api:MaxWait", "00:10:00" },
        { "Wuerstchen:Workflows:Retry:FirstInterval", "0" },
        { "Wuerstchen:Workflows:Retry:MaxAttempts", "0" },
        { "Wuerstchen:Workflows:Retry:BackoffCoefficient", "0.5" },
        { "Wuerstchen:Workflows:CancelCheckInterval", "00:00:00" },
        { "Wuerstchen:Bulk:BatchSize", "0" },
        { "Wuerstchen:Bulk:MaxParallelism", "0" },
        { "Wuerstchen:Bulk:QueueName", "Generation_Jobs" },
        { "Wuerstchen:Limits:MaxWidth", "1000" },
        { "Wuerstchen:Limits:MaxImages", "0" },
        { "Wuerstchen:Models:MemoryBudget", "lots" },
        { "Wuerstchen:Models:Device", "tpu" },
        { "Wuerstchen:Training:StepsPerChunk", "0" },
        { "Wuerstchen:Retention:Period", "00:00:00" },
        { "Wuerstchen:Preload:Prior", "not a/../name" },
        { "Wuerstchen:Api:MaxBodyBytes", "10" },
        { "Wuerstchen:Storage:Kind", "Floppy" },
        { "Wuerstchen:Api:ImageDelivery", "Email" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public async Task ABadSettingStopsTheAppAtStartUpNamingTheSetting(string key, string value)
    {
        using var host = Build(new Dictionary<string, string?> { [key] = value });
        var error = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync(Token));
        // A value of the wrong type fails in binding (which names the setting too); the rest in validation.
        Assert.True(error is OptionsValidationException || (error is InvalidOperationException && value is "Floppy" or "Email"), error.ToString());
        Assert.Contains(key, error.Message);
    }

    /// <summary>The host resolves a trigger's %setting% from the app settings alone and would disable the trigger without it.</summary>
    [Theory]
    [InlineData("Wuerstchen:Bulk:QueueName")]
    [InlineData("Wuerstchen:Training:Schedule")]
    public async Task AMissingTriggerSettingStopsTheAppAtStartUpNamingIt(string key)
    {
        Assert.Contains(key, TriggerSettings.Named);
        using var host = Build(new Dictionary<string, string?> { [key] = null });
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(Token));
        Assert.Contains(key, error.Message);
        Assert.Contains(key.Replace(":", "__", StringComparison.Ordinal), error.Message);
    }

    [Fact]
    public async Task TheDefaultsStart()
    {
        using var host = Build(new Dictionary<string, string?>());
        await host.StartAsync(Token);
        await host.StopAsync(Token);
    }
}
