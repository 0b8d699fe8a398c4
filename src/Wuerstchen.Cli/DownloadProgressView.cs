using System.Globalization;
using Spectre.Console;
using Wuerstchen.Pipeline.Hub;

namespace Wuerstchen.Cli;

/// <summary>
/// Shows a model download on standard error, which holds no results: on a terminal, a byte progress bar per file with
/// its transfer speed and time left; otherwise plain lines (<see cref="DownloadProgressLines"/>), so a log gets no
/// carriage returns or escape codes.
/// </summary>
public static class DownloadProgressView
{
    /// <summary>How often a plain line reports a file that is still downloading.</summary>
    public static readonly TimeSpan PlainLineInterval = TimeSpan.FromSeconds(5);

    public static async Task<T> RunAsync<T>(Func<IProgress<DownloadProgress>, Task<T>> download)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (Console.IsErrorRedirected || !console.Profile.Capabilities.Interactive)
        {
            var lines = new DownloadProgressLines(Console.Error, TimeProvider.System, PlainLineInterval);
            var result = await download(lines);
            lines.Finish();
            return result;
        }

        T value = default!;
        await console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async context => value = await download(new Bars(context)));
        return value;
    }

    /// <summary>One bar per file, added when the file's first bytes are reported.</summary>
    private sealed class Bars(ProgressContext context) : IProgress<DownloadProgress>
    {
        private readonly Dictionary<string, ProgressTask> _tasks = new(StringComparer.Ordinal);

        public void Report(DownloadProgress value)
        {
            ProgressTask? task;
            lock (_tasks)
            {
                if (!_tasks.TryGetValue(value.Path, out task))
                {
                    task = context.AddTask(Markup.Escape(value.Path), maxValue: Math.Max(1, value.TotalBytes));
                    _tasks.Add(value.Path, task);
                }
            }
            task.Value = Math.Min(value.BytesDownloaded, task.MaxValue);
            if (value.BytesDownloaded >= value.TotalBytes)
                task.StopTask();
        }
    }
}

/// <summary>
/// Download progress as plain lines: a line when a file starts (with its size, and where a download resumes) or is
/// resumed after an interruption, at most one
/// line per <c>interval</c> while it runs (bytes, percentage, speed, time left), a line when it is done, and with
/// <see cref="Finish"/> the total. Reports may come from several downloads at once.
/// </summary>
public sealed class DownloadProgressLines(TextWriter output, TimeProvider clock, TimeSpan interval) : IProgress<DownloadProgress>
{
    private sealed class FileState(long startBytes, long startTimestamp)
    {
        public long StartBytes { get; } = startBytes;
        public long StartTimestamp { get; } = startTimestamp;
        public long LastLineTimestamp { get; set; } = startTimestamp;
        public long Bytes { get; set; } = startBytes;
        public bool Done { get; set; }
    }

    private readonly object _gate = new();
    private readonly Dictionary<string, FileState> _files = new(StringComparer.Ordinal);
    private long? _firstTimestamp;

    public void Report(DownloadProgress value)
    {
        lock (_gate)
        {
            long now = clock.GetTimestamp();
            _firstTimestamp ??= now;
            bool complete = value.BytesDownloaded >= value.TotalBytes;
            string resuming = value.BytesDownloaded > 0 ? $"resuming after {Size(value.BytesDownloaded)}" : "starting again";
            if (!_files.TryGetValue(value.Path, out var file))
            {
                file = new FileState(value.BytesDownloaded, now);
                _files.Add(value.Path, file);
                if (complete && !value.Starting)
                {
                    file.Done = true;
                    output.WriteLine($"  {value.Path}: {Size(value.TotalBytes)}, already downloaded");
                    return;
                }
                output.WriteLine($"  {value.Path}: downloading {Size(value.TotalBytes)}{(value.BytesDownloaded > 0 ? ", " + resuming : "")}");
            }
            else if (value.Starting && !file.Done)
            {
                output.WriteLine($"  {value.Path}: interrupted, {resuming}");
                file.LastLineTimestamp = now;
            }
            if (file.Done)
                return;
            file.Bytes = Math.Max(file.Bytes, value.BytesDownloaded);
            var elapsed = clock.GetElapsedTime(file.StartTimestamp, now);
            double? speed = elapsed > TimeSpan.Zero ? (file.Bytes - file.StartBytes) / elapsed.TotalSeconds : null;
            if (complete)
            {
                file.Done = true;
                output.WriteLine($"  {value.Path}: {Size(value.TotalBytes)} done{(speed is { } s ? $" in {Duration(elapsed)}, {Size(s)}/s" : "")}");
                return;
            }
            if (clock.GetElapsedTime(file.LastLineTimestamp, now) < interval)
                return;
            file.LastLineTimestamp = now;
            output.WriteLine($"  {value.Path}: {Describe(file.Bytes, value.TotalBytes, speed)}");
        }
    }

    /// <summary>Writes the total: bytes transferred, files and the average speed.</summary>
    public void Finish()
    {
        lock (_gate)
        {
            long transferred = _files.Values.Sum(f => f.Bytes - f.StartBytes);
            int downloaded = _files.Values.Count(f => f.Bytes > f.StartBytes);
            if (_firstTimestamp is not { } first || downloaded == 0)
                return;
            var elapsed = clock.GetElapsedTime(first);
            string speed = elapsed > TimeSpan.Zero ? $", {Size(transferred / elapsed.TotalSeconds)}/s" : "";
            output.WriteLine($"Downloaded {Size(transferred)} in {downloaded} file{(downloaded == 1 ? "" : "s")} in {Duration(elapsed)}{speed}");
        }
    }

    /// <summary><c>1.5 MiB of 4.0 MiB (37%), 2.0 MiB/s, about 2 s left</c>; without a known size, bytes and speed only.</summary>
    internal static string Describe(long bytes, long total, double? bytesPerSecond)
    {
        string speed = bytesPerSecond is { } s ? $", {Size(s)}/s" : "";
        if (total <= 0)
            return $"{Size(bytes)}{speed}";
        string left = bytesPerSecond is > 0 ? $", about {Duration(TimeSpan.FromSeconds((total - bytes) / bytesPerSecond.Value))} left" : "";
        return $"{Size(bytes)} of {Size(total)} ({bytes * 100 / total}%){speed}{left}";
    }

    /// <summary>Binary units, one decimal: <c>512 B</c>, <c>1.5 KiB</c>, <c>2.0 GiB</c>.</summary>
    internal static string Size(double bytes)
    {
        string[] units = ["KiB", "MiB", "GiB", "TiB"];
        if (bytes < 1024)
            return string.Create(CultureInfo.InvariantCulture, $"{bytes:0} B");
        int unit = -1;
        while (bytes >= 1024 && unit < units.Length - 1)
        {
            bytes /= 1024;
            unit++;
        }
        return string.Create(CultureInfo.InvariantCulture, $"{bytes:0.0} {units[unit]}");
    }

    /// <summary><c>0.4 s</c>, <c>42 s</c>, <c>3 min 05 s</c>, <c>1 h 02 min</c>.</summary>
    internal static string Duration(TimeSpan time) => time.TotalSeconds switch
    {
        < 10 => string.Create(CultureInfo.InvariantCulture, $"{time.TotalSeconds:0.0} s"),
        < 60 => string.Create(CultureInfo.InvariantCulture, $"{time.TotalSeconds:0} s"),
        < 3600 => string.Create(CultureInfo.InvariantCulture, $"{(int)time.TotalMinutes} min {time.Seconds:00} s"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{(int)time.TotalHours} h {time.Minutes:00} min"),
    };
}
