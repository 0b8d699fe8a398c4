using System.Collections.Concurrent;
using System.Globalization;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>
/// Durations and figures this layer measured (start-up, restarts, latencies), written to
/// .artifacts/host-tests/figures.txt when the host fixture ends and shown by scripts/test.sh. Figures, never asserted limits.
/// </summary>
public static class Timings
{
    private static readonly ConcurrentQueue<string> Lines = new();

    public static void Record(string what, TimeSpan duration) => Note($"{what}: {duration.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s");

    public static void Note(string line)
    {
        Lines.Enqueue(line);
        TestContext.Current.TestOutputHelper?.WriteLine(line);
    }

    public static void Write()
    {
        Directory.CreateDirectory(Repository.ArtifactsFolder);
        var lines = new List<string>();
        while (Lines.TryDequeue(out string? line))
            lines.Add(line);
        File.AppendAllLines(Path.Combine(Repository.ArtifactsFolder, "figures.txt"), lines);
    }
}
