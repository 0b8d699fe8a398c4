using System.Diagnostics;

namespace Wuerstchen.Scripts.Tests;

public sealed record ProcessResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

public static class Processes
{
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>Where this machine's restore put the LibTorch CPU natives (the libtorch-cpu-linux-x64 package), as a plain folder.</summary>
    public static string NuGetLibTorchNatives
    {
        get
        {
            string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
                ? configured
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            string folder = Path.Combine(packages, "libtorch-cpu-linux-x64", "2.10.0", "runtimes", "linux-x64", "native");
            Assert.True(File.Exists(Path.Combine(folder, "libtorch_cpu.so")), $"No restored LibTorch CPU natives at {folder}.");
            return folder;
        }
    }

    public static async Task<ProcessResult> RunAsync(string program, IEnumerable<string> arguments, IDictionary<string, string?>? environment,
        TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = RepositoryRoot,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        // LibTorch must come from what the test sets, never from the environment the tests happen to run in.
        start.Environment["WUERSTCHEN_LIBTORCH"] = null;
        start.Environment["LD_LIBRARY_PATH"] = null;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>())
            start.Environment[name] = value;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"{program} did not start.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', start.ArgumentList)} did not finish within {timeout}.");
        }
        return new ProcessResult(process.ExitCode, await output, await error);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Wuerstchen.Functions.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException($"No repository above {AppContext.BaseDirectory}.");
    }
}
