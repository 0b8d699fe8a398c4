using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>One record of the host's console log ("info: Category[id]" and its indented message lines), stamped when it arrived.</summary>
public sealed record LogEntry(int Sequence, DateTimeOffset At, string Level, string Category, string Message)
{
    public override string ToString() => $"{At:HH:mm:ss.fff} {Level}: {Category}: {Message}";
}

/// <summary>
/// What a host process writes, parsed into records as it arrives, kept in memory for the tests' evidence (which
/// functions ran, with which trigger details, in what order and when) and written to a file for reading after a failure.
/// The host's console log has no timestamps of its own: each record is stamped on arrival (within milliseconds).
/// </summary>
public sealed partial class HostLog : IDisposable
{
    private readonly object _gate = new();
    private readonly List<(int Sequence, DateTimeOffset At, string Level, string Category, StringBuilder Message)> _entries = [];
    private readonly StreamWriter _file;

    public HostLog(string path)
    {
        Path = path;
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        _file = new StreamWriter(path, append: false, new UTF8Encoding(false)) { AutoFlush = true };
    }

    public string Path { get; }

    [GeneratedRegex(@"^(trce|dbug|info|warn|fail|crit): (.+)\[(-?\d+)\]$")]
    private static partial Regex Header();

    public void Add(string? line, bool isError = false)
    {
        if (line is null)
            return;
        var now = DateTimeOffset.UtcNow;
        lock (_gate)
        {
            _file.WriteLine($"{now:HH:mm:ss.fff} {line}");
            if (!isError && Header().Match(line) is { Success: true } header)
                _entries.Add((_entries.Count, now, header.Groups[1].Value, header.Groups[2].Value, new StringBuilder()));
            else if (!isError && line.StartsWith("      ", StringComparison.Ordinal) && _entries.Count > 0 && _entries[^1].Level != "raw")
                Append(_entries[^1].Message, line[6..]);
            else
                _entries.Add((_entries.Count, now, "raw", isError ? "stderr" : "stdout", new StringBuilder(line)));
        }
    }

    private static void Append(StringBuilder message, string text)
    {
        if (message.Length > 0)
            message.Append('\n');
        message.Append(text);
    }

    public IReadOnlyList<LogEntry> Entries
    {
        get
        {
            lock (_gate)
                return _entries.Select(e => new LogEntry(e.Sequence, e.At, e.Level, e.Category, e.Message.ToString())).ToArray();
        }
    }

    public int Count
    {
        get
        {
            lock (_gate)
                return _entries.Count;
        }
    }

    /// <summary>The first record from <paramref name="from"/> on that matches, waiting for it at most <paramref name="timeout"/>.</summary>
    public async Task<LogEntry> WaitForAsync(Func<LogEntry, bool> match, TimeSpan timeout, string what, int from = 0, Func<bool>? giveUp = null)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (Entries.Skip(from).FirstOrDefault(match) is { } found)
                return found;
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"The host did not log {what} within {timeout.TotalSeconds:0} s (log: {Path}).");
            if (giveUp?.Invoke() == true)
                throw new InvalidOperationException($"The host stopped before it logged {what} (log: {Path}).");
            await Task.Delay(100);
        }
    }

    public void Dispose()
    {
        lock (_gate)
            _file.Dispose();
    }
}
