using System.Diagnostics;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Cli.Tests;

public sealed record CliResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>Starts <c>wuerstchen</c> (the built CLI beside the tests) the way a shell would.</summary>
public static class CliProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "wuerstchen.dll");

    public static Process Start(IEnumerable<string> arguments, IDictionary<string, string?>? environment = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        start.ArgumentList.Add(Dll);
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        start.Environment["HF_HOME"] = Path.Combine(Path.GetTempPath(), "wuerstchen-tests-empty-hf-home");
        start.Environment["HF_HUB_OFFLINE"] = null;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            start.Environment[name] = value;
        return Process.Start(start) ?? throw new InvalidOperationException("dotnet did not start.");
    }

    /// <param name="timeout">How long the command may run before it is killed (and the test fails); default 3 minutes.</param>
    public static async Task<CliResult> RunAsync(IEnumerable<string> arguments, IDictionary<string, string?>? environment = null, CancellationToken cancellationToken = default,
        TimeSpan? timeout = null)
    {
        using var process = Start(arguments, environment);
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout ?? TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new CliResult(process.ExitCode, await output, await error);
    }

    /// <summary>The fixture models as a model root, and the arguments that pick its two pipelines.</summary>
    public static string[] FixtureModels() =>
        ["--models", ParityFixtures.PathOf("models"), "--prior-model", "prior-pipeline", "--decoder-model", "decoder-pipeline"];
}
