using System.Collections;
using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Training;
using Wuerstchen.Workflows;

namespace Wuerstchen.Functions.Tests;

/// <summary>
/// Keeps the settings documentation complete: every property of every options class the app binds from
/// configuration is described in docs/configuration.md (under its section's heading) and set in
/// local.settings.json.example. The options classes are found in the app's own service registrations, so a new
/// options class or property fails this test until it is documented.
/// </summary>
public sealed class SettingsDocumentationTests
{
    /// <summary>Settings whose value is a whole object documented elsewhere: a scheduled fine-tune's request is a fine-tune request (docs/fine-tuning.md).</summary>
    private static readonly Type[] DocumentedAsAWhole = [typeof(FineTuneRequest)];

    private static string RepositoryFile(string relative) => Path.Combine(ParityFixtures.RepositoryRoot(), relative);

    /// <summary>The options types the app binds (as its Program does), each with its configuration section.</summary>
    private static IReadOnlyList<(Type Type, string Section)> BoundOptions()
    {
        var services = new ServiceCollection();
        var configuration = new ConfigurationBuilder().Build();
        services.AddWuerstchenWorkflows(configuration);
        services.AddOptions<ApiOptions>().Bind(configuration.GetSection(ApiOptions.Section)); // as Program.cs does
        var types = services
            .Where(d => d.ServiceType.IsGenericType && d.ServiceType.GetGenericTypeDefinition() == typeof(IOptionsChangeTokenSource<>))
            .Select(d => d.ServiceType.GetGenericArguments()[0])
            .Distinct()
            .ToArray();
        Assert.True(types.Length >= 7, $"found only {types.Length} bound options types");
        return types.Select(t => (t, SectionOf(t))).ToArray();
    }

    private static string SectionOf(Type type)
    {
        var field = type.GetField("Section", BindingFlags.Public | BindingFlags.Static) ?? type.GetField("SectionName", BindingFlags.Public | BindingFlags.Static);
        Assert.True(field is not null, $"{type.Name} names no configuration section (a const Section)");
        return (string)field.GetRawConstantValue()!;
    }

    /// <summary>
    /// Every setting of an options type, relative to its section: <c>Retry:MaxAttempts</c>; a dictionary's entries as
    /// <c>Paths:{name}</c>; a list's items as <c>Scheduled:{n}:Name</c>.
    /// </summary>
    private static IEnumerable<string> Settings(Type type, string prefix = "")
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.GetIndexParameters().Length == 0))
        {
            string name = prefix + property.Name;
            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            if (IsScalar(propertyType) || DocumentedAsAWhole.Contains(propertyType))
            {
                yield return name;
            }
            else if (propertyType.IsGenericType && propertyType.GetInterfaces().Append(propertyType).Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>)))
            {
                yield return name + ":{name}";
            }
            else if (typeof(IEnumerable).IsAssignableFrom(propertyType))
            {
                var element = propertyType.IsArray ? propertyType.GetElementType()! : propertyType.GetGenericArguments()[0];
                if (IsScalar(element))
                    yield return name + ":{n}";
                else
                    foreach (string inner in Settings(element, name + ":{n}:"))
                        yield return inner;
            }
            else
            {
                foreach (string inner in Settings(propertyType, name + ":"))
                    yield return inner;
            }
        }
    }

    private static bool IsScalar(Type type) =>
        type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type == typeof(TimeSpan) || type == typeof(DateTimeOffset) || type == typeof(Uri);

    [Fact]
    public void EverySettingTheAppBindsIsDescribedInTheConfigurationReference()
    {
        string document = File.ReadAllText(RepositoryFile("docs/configuration.md"));
        var missing = new List<string>();
        int count = 0;
        foreach (var (type, section) in BoundOptions())
        {
            string text = SectionText(document, section);
            Assert.True(text.Length > 0, $"docs/configuration.md has no heading naming `{section}` ({type.Name})");
            foreach (string setting in Settings(type))
            {
                count++;
                if (!text.Contains($"`{setting}`", StringComparison.Ordinal))
                    missing.Add($"{section}:{setting}");
            }
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"{count} settings checked");
        Assert.True(missing.Count == 0, "docs/configuration.md does not describe: " + string.Join(", ", missing));
    }

    [Fact]
    public void EverySettingTheAppBindsIsSetInTheLocalSettingsExample()
    {
        using var example = JsonDocument.Parse(File.ReadAllText(RepositoryFile("local.settings.json.example")));
        var keys = example.RootElement.GetProperty("Values").EnumerateObject().Select(p => p.Name).ToArray();
        var missing = new List<string>();
        foreach (var (type, section) in BoundOptions())
        {
            foreach (string setting in Settings(type))
            {
                // Placeholders ({name}, {n}) stand for any key there; a whole-object setting for any of its fields.
                string key = (section + ":" + setting).Replace(":", "__", StringComparison.Ordinal);
                string[] parts = key.Split("__");
                bool found = keys.Any(k =>
                {
                    string[] given = k.Split("__");
                    if (given.Length < parts.Length)
                        return false;
                    for (int i = 0; i < parts.Length; i++)
                    {
                        if (parts[i] is not ("{name}" or "{n}") && parts[i] != given[i])
                            return false;
                    }
                    return true;
                });
                if (!found)
                    missing.Add(key);
            }
        }
        Assert.True(missing.Count == 0, "local.settings.json.example does not set: " + string.Join(", ", missing));

        // And it is a configuration the app accepts.
        var values = example.RootElement.GetProperty("Values").EnumerateObject().ToDictionary(p => p.Name.Replace("__", ":", StringComparison.Ordinal), p => (string?)p.Value.GetString());
        var provider = new ServiceCollection().AddLogging().AddWuerstchenWorkflows(new ConfigurationBuilder().AddInMemoryCollection(values).Build()).BuildServiceProvider();
        Assert.Empty(provider.GetRequiredService<IOptions<TrainingOptions>>().Value.Validate());
        Assert.Empty(provider.GetRequiredService<IOptions<Wuerstchen.Pipeline.Storage.StorageOptions>>().Value.Validate());
    }

    /// <summary>The text from the heading that names <paramref name="section"/> to the next heading of that level.</summary>
    private static string SectionText(string document, string section)
    {
        string[] lines = document.Split('\n');
        int start = Array.FindIndex(lines, l => l.StartsWith("## ", StringComparison.Ordinal) && l.Contains($"`{section}`", StringComparison.Ordinal));
        if (start < 0)
            return "";
        int end = Array.FindIndex(lines, start + 1, l => l.StartsWith("## ", StringComparison.Ordinal));
        return string.Join('\n', lines[start..(end < 0 ? lines.Length : end)]);
    }
}
