using Microsoft.Extensions.Options;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Cli.Tests;

/// <summary>The command line's engine checks its settings as the Functions host does when it starts.</summary>
public sealed class LocalEngineTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("Wuerstchen:Bulk:BatchSize", "0")]
    [InlineData("Wuerstchen:Workflows:Retry:FirstInterval", "00:00:00")]
    [InlineData("Wuerstchen:Models:MemoryBudget", "a lot")]
    public async Task TheEngineDoesNotStartOnASettingItCannotWorkWith(string key, string value)
    {
        var settings = new EngineSettings { ModelsRoot = ParityFixtures.PathOf("models"), StoreDirectory = _temp.File("store") };
        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var engine = await LocalEngine.StartAsync(settings, new Dictionary<string, string?> { [key] = value }, TestContext.Current.CancellationToken);
        });
        Assert.Contains(key, error.Message);
    }
}
