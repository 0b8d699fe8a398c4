namespace Wuerstchen.Models.Tests;

/// <summary>
/// The reliability suites' counts (inputs tried, faults injected, items lost): into the test's output and appended to
/// <c>.artifacts/test-results/reliability.log</c>, which <c>scripts/test.sh</c> prints before its closing line.
/// </summary>
public static class ReliabilityLog
{
    public static void Record(string line)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        Console.WriteLine(line);
        string? path = LogPath();
        if (path is null)
            return;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                using var file = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.None);
                using var writer = new StreamWriter(file);
                writer.WriteLine(line);
                return;
            }
            catch (IOException) when (attempt < 50)
            {
                // Another test process is appending its line.
                Thread.Sleep(20);
            }
        }
    }

    private static string? LogPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Wuerstchen.Functions.sln")))
                return Path.Combine(dir.FullName, ".artifacts", "test-results", "reliability.log");
        }
        return null;
    }
}
