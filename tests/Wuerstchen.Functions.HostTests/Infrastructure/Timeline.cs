using System.Text.RegularExpressions;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>A Durable event the host logged for one instance: "{instance}: Function 'StageB (Activity)' started. IsReplay: False…".</summary>
public sealed record DurableEvent(DateTimeOffset At, string Instance, string Function, string Kind, string Event, bool Replay);

/// <summary>Instance timelines read from the host's log (the Durable extension's function events, per instance, stamped on arrival).</summary>
public static partial class Timeline
{
    [GeneratedRegex(@"^(?<instance>[^:\s]+): Function '(?<function>\w+) \((?<kind>\w+)\)' (?<event>\w+)\.")]
    private static partial Regex Event();

    public static IReadOnlyList<DurableEvent> Of(IEnumerable<LogEntry> entries, string instance)
    {
        var events = new List<DurableEvent>();
        foreach (var entry in entries)
        {
            if (Event().Match(entry.Message) is { Success: true } match && match.Groups["instance"].Value == instance)
            {
                events.Add(new DurableEvent(entry.At, instance, match.Groups["function"].Value, match.Groups["kind"].Value, match.Groups["event"].Value,
                    entry.Message.Contains("IsReplay: True", StringComparison.Ordinal)));
            }
        }
        return events;
    }

    /// <summary>How many times the activity <paramref name="function"/> of <paramref name="instance"/> started (not replays).</summary>
    public static int Starts(IEnumerable<LogEntry> entries, string instance, string function) =>
        Of(entries, instance).Count(e => e.Function == function && e.Kind == "Activity" && e.Event == "started" && !e.Replay);

    public static DurableEvent First(IReadOnlyList<DurableEvent> events, string function, string @event) =>
        events.FirstOrDefault(e => e.Function == function && e.Event == @event && !e.Replay)
        ?? throw new InvalidOperationException($"No '{function} {@event}' event for {events.FirstOrDefault()?.Instance}: " +
                                               string.Join("; ", events.Select(e => $"{e.Function} {e.Event}")));
}
