using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>Where things are: the repository, the app's build output, the host and Azurite, and the commands that make them.</summary>
public static class Repository
{
    public static string Root { get; } = FindRoot();

    /// <summary>The Functions app as <c>dotnet build</c> left it (the test project builds it first): what <c>func start</c> runs.</summary>
    public static string AppOutput { get; } = Path.GetFullPath(typeof(Repository).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "AppOutput").Value!);

    public static string HostJson => Path.Combine(Root, "host.json");

    public static string SettingsExample => Path.Combine(Root, "local.settings.json.example");

    /// <summary>Logs of every host this run starts, kept for reading after a failure (ignored by git).</summary>
    public static string ArtifactsFolder { get; } = Path.Combine(Root, ".artifacts", "host-tests");

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>The host's binaries: scripts/functions-host.sh builds them once into .artifacts/functions-host and prints the folder.</summary>
    public static async Task<string> BuildHostAsync(CancellationToken cancellationToken)
    {
        var (code, output, errors) = await RunAsync("bash", [Path.Combine(Root, "scripts", "functions-host.sh")], TimeSpan.FromMinutes(20), cancellationToken);
        if (code != 0)
            throw new InvalidOperationException($"scripts/functions-host.sh failed (exit {code}):\n{output}{errors}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim();
    }

    /// <summary>Azurite from tools/azurite (npm, pinned by its lock file), installed the way scripts/azurite.sh does.</summary>
    public static async Task<string> AzuriteAsync(CancellationToken cancellationToken)
    {
        string azurite = Path.Combine(Root, "tools", "azurite", "node_modules", ".bin", "azurite");
        if (!File.Exists(azurite))
        {
            var (code, output, errors) = await RunAsync("bash", ["-c", $"source scripts/azurite.sh && azurite_install '{Root}'"], TimeSpan.FromMinutes(10), cancellationToken);
            if (code != 0 || !File.Exists(azurite))
                throw new InvalidOperationException($"Azurite could not be installed (npm ci in tools/azurite, exit {code}):\n{output}{errors}");
        }
        return azurite;
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<(int Code, string Output, string Errors)> RunAsync(string file, string[] arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = Root, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish within {timeout}.");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Wuerstchen.Functions.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("The repository root (Wuerstchen.Functions.sln) was not found above the test binaries.");
    }
}
