using System.Diagnostics;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Cli.Tests;

/// <summary>Wrong input stops before any work with one line in the options' terms; output goes where a user looks for it.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static async Task AssertUsageErrorAsync(string[] arguments, string expected)
    {
        var result = await CliProcess.RunAsync(arguments, cancellationToken: Token);
        Assert.True(result.ExitCode == 2, result.ToString());
        string line = Assert.Single(result.Error.Trim().Split('\n'));
        Assert.Contains(expected, line);
        Assert.StartsWith("error: ", line);
        Assert.DoesNotContain("`1", line);
    }

    [Fact]
    public async Task WrongInputStopsWithExitCodeTwoAndOneLineBeforeAnyWork()
    {
        string store = _temp.File("store");
        string file = _temp.File("a-file");
        await File.WriteAllTextAsync(file, "not a folder", Token);
        string[] models = [.. CliProcess.FixtureModels(), "--store", store];

        // Misspelt options are refused, not ignored.
        await AssertUsageErrorAsync(["generate", "a cat", "--widht", "128", .. models], "Unknown option 'widht'");
        await AssertUsageErrorAsync(["models", "list", "--modles", "x"], "Unknown option 'modles'");
        // A value that does not convert is named by its option and the kind of value wanted.
        await AssertUsageErrorAsync(["generate", "a cat", "--width", "abc", .. models], "--width: 'abc' is not a whole number.");
        await AssertUsageErrorAsync(["generate", "a cat", "--prior-guidance=high", .. models], "--prior-guidance: 'high' is not a number.");
        // Paths that must be folders but name files.
        await AssertUsageErrorAsync(["generate", "a cat", "--output", file, .. models], $"--output '{file}' is a file");
        await AssertUsageErrorAsync(["generate", "a cat", .. CliProcess.FixtureModels(), "--store", file], $"--store '{file}' is a file");
        await AssertUsageErrorAsync(["generate", "a cat", "--models", file], $"--models '{file}' is a file");
        await AssertUsageErrorAsync(["models", "list", "--models", file], $"--models '{file}' is a file");
        // A device the build cannot drive, before any model loads or any blob is written.
        var cuda = await CliProcess.RunAsync(["generate", "a cat", "--device", "cuda", .. models], cancellationToken: Token);
        Assert.True(cuda.ExitCode == 2, cuda.ToString());
        string line = Assert.Single(cuda.Error.Trim().Split('\n'));
        Assert.StartsWith("error: --device cuda: ", line);
        Assert.Contains(DeviceCheck.Backend == "cpu" ? "carries LibTorch's CPU backend" : "CUDA", line);
        Assert.DoesNotContain("LoadNativeBackend", line);
        Assert.False(Directory.Exists(store), "the store was created although nothing could run");
    }

    [Fact]
    public async Task VerboseLogsGoToStandardErrorAndFailuresCarryTheirStackTraces()
    {
        var run = await CliProcess.RunAsync(["generate", "a cat", "-W", "128", "-H", "128", "--prior-steps", "2", "--decoder-steps", "2", "--verbose",
            "-o", _temp.File("out"), .. CliProcess.FixtureModels(), "--store", _temp.File("store")], cancellationToken: Token);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("Loaded Stage C model prior-pipeline", run.Error);
        Assert.DoesNotContain("info:", run.Output);
        Assert.DoesNotContain("Loaded Stage", run.Output);
        Assert.Contains("Wrote ", run.Output);

        var failed = await CliProcess.RunAsync(["generate", "a cat", "--verbose", "--models", ParityFixtures.PathOf("models"), "--prior-model", "nobody",
            "--decoder-model", "decoder-pipeline", "--store", _temp.File("store")], cancellationToken: Token);
        Assert.Equal(3, failed.ExitCode);
        Assert.Contains("model 'nobody' is not on disk", failed.Error);
        Assert.Contains("   at Wuerstchen.Cli.", failed.Error);
    }

    [Fact]
    public async Task TheScriptSaysFirstTimeOnlyWhenItBuildsForTheFirstTime()
    {
        // The script in a copy of the repository layout, with a stand-in dotnet that "builds" by creating the output.
        string root = _temp.File("repo");
        Directory.CreateDirectory(Path.Combine(root, "scripts"));
        string script = Path.Combine(root, "scripts", "wuerstchen.sh");
        File.Copy(RepositoryFile("scripts/wuerstchen.sh"), script);
        string bin = _temp.File("bin");
        Directory.CreateDirectory(bin);
        string fake = Path.Combine(bin, "dotnet");
        await File.WriteAllTextAsync(fake, """
            #!/usr/bin/env bash
            if [ "$1" = build ]; then
              while [ $# -gt 0 ]; do if [ "$1" = -o ]; then mkdir -p "$2" && touch "$2/wuerstchen.dll"; fi; shift; done
              exit 0
            fi
            echo "ran $*"
            """.Replace("\r", ""), Token);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);

        async Task<(string Output, string Error)> RunAsync()
        {
            var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(script);
            start.ArgumentList.Add("models");
            start.ArgumentList.Add("list");
            start.Environment["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH");
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync(Token);
            var error = process.StandardError.ReadToEndAsync(Token);
            await process.WaitForExitAsync(Token);
            Assert.Equal(0, process.ExitCode);
            return (await output, await error);
        }

        var first = await RunAsync();
        Assert.Contains("for the first time", first.Error);
        Assert.Contains("models list", first.Output);
        var second = await RunAsync();
        Assert.DoesNotContain("first time", second.Error);
        Assert.Equal("", second.Error.Trim());
        Assert.Contains("models list", second.Output);
    }

    private static string RepositoryFile(string relative) => Path.Combine(ParityFixtures.RepositoryRoot(), relative);
}
