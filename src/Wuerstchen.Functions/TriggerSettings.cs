using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Workflows;

namespace Wuerstchen.Functions;

/// <summary>
/// The app settings the triggers name in binding expressions (<c>%Wuerstchen:Bulk:QueueName%</c>). The Functions host
/// resolves those from the app settings alone (an options class's default does not count) and, when one is missing,
/// disables that trigger while the rest of the app runs on. Checked with every other setting when the app starts
/// (<see cref="TriggerSettingsServiceCollectionExtensions.AddWuerstchenTriggerSettings"/>), so that a missing one stops
/// the app with its name.
/// </summary>
public sealed partial class TriggerSettings
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

    /// <summary>One message per trigger setting that <paramref name="configuration"/> does not set, naming it.</summary>
    public static IReadOnlyList<string> Validate(IConfiguration configuration) => Named
        .Where(name => string.IsNullOrWhiteSpace(configuration[name]))
        .Select(name => $"{name} is not set (app setting {name.Replace(":", "__", StringComparison.Ordinal)}); a trigger reads it as %{name}%, and the host would disable that trigger.")
        .ToArray();

    [GeneratedRegex("%([^%]+)%")]
    private static partial Regex Token();
}

public static class TriggerSettingsServiceCollectionExtensions
{
    /// <summary>The settings the triggers name, checked when the host starts like every options section.</summary>
    public static IServiceCollection AddWuerstchenTriggerSettings(this IServiceCollection services, IConfiguration configuration) =>
        services.AddValidatedOptions<TriggerSettings>(configuration, "Wuerstchen", _ => TriggerSettings.Validate(configuration));
}
