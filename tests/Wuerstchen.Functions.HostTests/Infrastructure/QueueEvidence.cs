using System.Text.RegularExpressions;
using Azure.Storage.Queues;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>One run of the queue trigger for a message, as the host logged it: its dequeue count and how it ended.</summary>
public sealed record QueueInvocation(string InvocationId, string MessageId, int DequeueCount, string? Outcome, DateTimeOffset At);

/// <summary>What the host's log and the queues tell about a message: each time the trigger ran for it, and whether it was poisoned.</summary>
public static partial class QueueEvidence
{
    public const string Function = "BulkGenerationQueue";

    [GeneratedRegex(@"^Executing 'Functions\.(?<function>[^']+)' \(Reason='.*', Id=(?<id>[0-9a-f-]+)\)")]
    private static partial Regex Executing();

    [GeneratedRegex(@"^Executed 'Functions\.(?<function>[^']+)' \((?<outcome>\w+), Id=(?<id>[0-9a-f-]+)")]
    private static partial Regex Executed();

    [GeneratedRegex(@"Trigger Details: MessageId: (?<message>[^,]+), DequeueCount: (?<count>\d+)")]
    private static partial Regex TriggerDetails();

    public static (string Function, string Id)? ExecutingId(string message) =>
        Executing().Match(message) is { Success: true } m ? (m.Groups["function"].Value, m.Groups["id"].Value) : null;

    public static string? ExecutedId(string message) => Executed().Match(message) is { Success: true } m ? m.Groups["id"].Value : null;

    /// <summary>Every run of the bulk trigger for <paramref name="messageId"/> over all the host's starts, oldest first.</summary>
    public static IReadOnlyList<QueueInvocation> Invocations(FunctionsHost host, string messageId, int from = 0)
    {
        var runs = new List<QueueInvocation>();
        foreach (var log in host.Logs)
        {
            var entries = log == host.Log ? log.Entries.Skip(from).ToArray() : log.Entries.ToArray();
            string? lastInvocation = null;
            var byInvocation = new Dictionary<string, int>();
            foreach (var entry in entries)
            {
                if (Executing().Match(entry.Message) is { Success: true } executing && executing.Groups["function"].Value == Function)
                    lastInvocation = executing.Groups["id"].Value;
                else if (TriggerDetails().Match(entry.Message) is { Success: true } details && lastInvocation is not null && details.Groups["message"].Value == messageId
                         && entry.Category.Contains(Function, StringComparison.Ordinal))
                {
                    byInvocation[lastInvocation] = runs.Count;
                    runs.Add(new QueueInvocation(lastInvocation, messageId, int.Parse(details.Groups["count"].Value), null, entry.At));
                }
                else if (Executed().Match(entry.Message) is { Success: true } executed && byInvocation.TryGetValue(executed.Groups["id"].Value, out int index))
                    runs[index] = runs[index] with { Outcome = executed.Groups["outcome"].Value };
            }
        }
        return runs;
    }

    /// <summary>Waits for the latest run of the trigger for <paramref name="messageId"/> to end; that run.</summary>
    public static async Task<QueueInvocation> WaitForOutcomeAsync(FunctionsHost host, string messageId, TimeSpan timeout, int from = 0)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (Invocations(host, messageId, from).LastOrDefault() is { Outcome: not null } run)
                return run;
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"The host did not finish running {Function} for message {messageId} within {timeout.TotalSeconds:0} s (log: {host.Log.Path}).");
            await Task.Delay(200);
        }
    }

    /// <summary>
    /// Whether the poison queue holds a message containing <paramref name="marker"/> (the host moves a message there as
    /// a new message with the same content, raw or base64 as it came).
    /// </summary>
    public static async Task<bool> InPoisonQueueAsync(QueueServiceClient queues, string queueName, string marker, CancellationToken cancellationToken)
    {
        var poison = queues.GetQueueClient(queueName + "-poison");
        if (!await poison.ExistsAsync(cancellationToken))
            return false;
        foreach (var message in (await poison.PeekMessagesAsync(32, cancellationToken)).Value)
        {
            string raw = message.Body.ToString();
            if (raw.Contains(marker, StringComparison.Ordinal) || Decoded(raw).Contains(marker, StringComparison.Ordinal))
                return true;
        }
        return false;
    }

    private static string Decoded(string raw)
    {
        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(raw));
        }
        catch (FormatException)
        {
            return "";
        }
    }
}
