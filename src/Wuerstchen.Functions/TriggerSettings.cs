using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;

namespace Wuerstchen.Functions;

/// <summary>
/// The app settings the triggers name in binding expressions (<c>%Wuerstchen:Bulk:QueueName%</c>). The Functions host
/// resolves those from the app settings alone (an options class's default does not count) and, when one is missing,
/// disables that trigger while the rest of the app runs on. Checked before the worker starts, so that a missing one
/// stops the app with its name, as every other setting does.
/// </summary>
public static partial class TriggerSettings
{
    /// <summary>Every setting a trigger attribute of this app names, in configuration form (<c>Wuerstchen:Bulk:QueueName</c>).</summary>
    public static IReadOnlyList<string> Named { get; } = typeof(TriggerSettings).Assembly.GetTypes()
        .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
        .SelectMany(m => m.GetParameters())
        .SelectMany(p => p.GetCustomAttributes())
        .Select(a => a switch
        {
            QueueTriggerAttribute queue => queue.QueueName,
            TimerTriggerAttribute timer => timer.Schedule,
            _ => null,
        })
        .OfType<string>()
        .SelectMany(expression => Token().Matches(expression).Select(m => m.Groups[1].Value))
        .Distinct()
        .Order(StringComparer.Ordinal)
        .ToArray();

    public static void ThrowIfMissing(IConfiguration configuration)
    {
        var missing = Named.Where(name => string.IsNullOrWhiteSpace(configuration[name])).ToArray();
        if (missing.Length > 0)
        {
            throw new InvalidOperationException(string.Join(" ", missing.Select(name =>
                $"The app setting {name.Replace(":", "__", StringComparison.Ordinal)} ({name}) is not set; a trigger reads it as %{name}%, and the host would disable that trigger.")));
        }
    }

    [GeneratedRegex("%([^%]+)%")]
    private static partial Regex Token();
}
