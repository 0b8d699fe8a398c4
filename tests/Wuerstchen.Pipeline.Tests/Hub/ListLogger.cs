using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Wuerstchen.Pipeline.Tests.Hub;

/// <summary>Keeps every log entry: the formatted message and each structured field.</summary>
internal sealed class ListLogger<T> : ILogger<T>
{
    public ConcurrentQueue<(LogLevel Level, string Message, IReadOnlyList<KeyValuePair<string, object?>> Fields)> Entries { get; } = new();

    public IEnumerable<string> AllText => Entries.SelectMany(e => e.Fields.Select(f => $"{f.Key}={f.Value}").Append(e.Message));

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        var fields = state as IReadOnlyList<KeyValuePair<string, object?>> ?? [];
        Entries.Enqueue((logLevel, formatter(state, exception), fields));
    }
}
