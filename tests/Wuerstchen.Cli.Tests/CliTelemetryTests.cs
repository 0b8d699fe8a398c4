using System.Text.RegularExpressions;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Cli.Tests;

/// <summary>
/// The command line's telemetry (<c>Wuerstchen:Telemetry</c>): off unless an exporter is named; the console exporter
/// prints the generation's spans and metrics; an exporter it does not know stops the command before any work.
/// </summary>
public sealed class CliTelemetryTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>A generation into its own output folder and store (a shared store would reuse the first run's images).</summary>
    private string[] Generate(string name) =>
        ["generate", "a red pokemon with wings", "-W", "128", "-H", "128", "--seed", "7", "--prior-steps", "2", "--decoder-steps", "2",
            "-o", _temp.File(name), .. CliProcess.FixtureModels(), "--store", _temp.File($"{name}-store")];

    [Fact]
    public async Task TheConsoleExporterPrintsTheGenerationsSpansAndMetricsAndNoneIsTheDefault()
    {
        var quiet = await CliProcess.RunAsync(Generate("quiet"), cancellationToken: Token);
        Assert.True(quiet.ExitCode == 0, quiet.ToString());
        Assert.DoesNotContain("Activity.DisplayName", quiet.Output);
        Assert.DoesNotContain("wuerstchen.images.generated", quiet.Output);

        var traced = await CliProcess.RunAsync(Generate("traced"),
            new Dictionary<string, string?> { ["Wuerstchen__Telemetry__Exporter"] = "Console" }, Token);
        Assert.True(traced.ExitCode == 0, traced.ToString());
        foreach (string span in new[] { "GenerateImage submit", "StageC", "StageB", "StageA" })
            Assert.True(Regex.IsMatch(traced.Output, $@"Activity\.DisplayName:\s+{span}\r?\n"), $"no span {span}\n{traced}");
        foreach (string metric in new[] { "wuerstchen.images.generated", "wuerstchen.stage.duration", "wuerstchen.model.loads" })
            Assert.True(traced.Output.Contains($"Metric Name: {metric},", StringComparison.Ordinal), $"no metric {metric}\n{traced}");
        Assert.Single(Directory.GetFiles(_temp.File("traced"), "*.png"));
    }

    [Fact]
    public async Task AnUnknownExporterStopsTheCommandBeforeAnyWork()
    {
        var result = await CliProcess.RunAsync(Generate("out"),
            new Dictionary<string, string?> { ["Wuerstchen__Telemetry__Exporter"] = "Zipkin" }, Token);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Wuerstchen:Telemetry:Exporter must be None, Console or Otlp, not 'Zipkin'.", result.Error);
        Assert.DoesNotContain("   at ", result.Error);
        Assert.False(Directory.Exists(_temp.File("out")));
    }
}
