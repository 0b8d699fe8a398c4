using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Cli;

/// <summary>The settings file named by <c>--settings</c> cannot be read.</summary>
public sealed class SettingsFileException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The configuration a command runs with, read as the Functions app reads its own, lowest precedence first: the
/// command line's defaults (a local store and cache under <c>~/.cache/wuerstchen</c>, models in <c>$HF_HOME</c>, two
/// attempts per activity), a settings file (<c>--settings</c>), <c>Wuerstchen__…</c> environment variables, the
/// command's options, and last what the command itself sets (such as the dataset's folder).
/// </summary>
public static class CliConfiguration
{
    public static string DefaultModelsRoot() =>
        Environment.GetEnvironmentVariable("HF_HOME") is { Length: > 0 } home
            ? home
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface");

    /// <summary><c>$XDG_CACHE_HOME/wuerstchen</c>, else <c>~/.cache/wuerstchen</c>.</summary>
    public static string DefaultCacheFolder() =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } cache
            ? cache
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "wuerstchen");

    public static string DefaultStore() => Path.Combine(DefaultCacheFolder(), "store");

    public static string DefaultModelCache() => Path.Combine(DefaultCacheFolder(), "models");

    /// <summary>The command line's own defaults, where they differ from the app's (documented in docs/configuration.md).</summary>
    public static IReadOnlyDictionary<string, string?> Defaults() => new Dictionary<string, string?>
    {
        [$"{ModelOptions.Section}:Root"] = DefaultModelsRoot(),
        [$"{ModelOptions.Section}:CacheRoot"] = DefaultModelCache(),
        [$"{StorageOptions.SectionName}:Kind"] = nameof(StorageKind.FileSystem),
        [$"{StorageOptions.SectionName}:RootPath"] = DefaultStore(),
        ["Wuerstchen:Workflows:Retry:MaxAttempts"] = "2",
        ["Wuerstchen:Workflows:Retry:FirstInterval"] = "00:00:01",
        ["Wuerstchen:Workflows:ProgressInterval"] = "00:00:00.200",
        [$"{TrainingOptions.Section}:ProgressInterval"] = "00:00:00.500",
    };

    public static IConfigurationRoot Build(CliSettings settings, IDictionary<string, string?>? commandValues = null)
    {
        var builder = new ConfigurationBuilder().AddInMemoryCollection(Defaults());
        if (settings.SettingsFile is { } file)
            builder.AddInMemoryCollection(ReadSettingsFile(file));
        builder.AddEnvironmentVariables();
        builder.AddInMemoryCollection(FromOptions(settings));
        if (commandValues is not null)
            builder.AddInMemoryCollection(commandValues);
        return builder.Build();
    }

    /// <summary>The model root the configuration names, as a full path.</summary>
    public static string ModelsRoot(IConfiguration configuration) =>
        Path.GetFullPath(configuration[$"{ModelOptions.Section}:Root"] is { Length: > 0 } root ? root : DefaultModelsRoot());

    /// <summary>The storage options the configuration names.</summary>
    public static StorageOptions Storage(IConfiguration configuration) =>
        configuration.GetSection(StorageOptions.SectionName).Get<StorageOptions>() ?? new StorageOptions();

    private static Dictionary<string, string?> FromOptions(CliSettings settings)
    {
        var values = new Dictionary<string, string?>();
        const string storage = StorageOptions.SectionName;
        if (settings.ModelsRoot is { } root)
            values[$"{ModelOptions.Section}:Root"] = Path.GetFullPath(root);
        if (settings.StorageConnection is { } connection)
        {
            values[$"{storage}:Kind"] = nameof(StorageKind.AzureBlob);
            values[$"{storage}:ConnectionString"] = connection;
            values[$"{storage}:ServiceUri"] = "";
            values[$"{storage}:ManagedIdentityClientId"] = "";
        }
        else if (settings.StoreDirectory is { } store)
        {
            values[$"{storage}:Kind"] = nameof(StorageKind.FileSystem);
            values[$"{storage}:RootPath"] = Path.GetFullPath(store);
        }
        if (settings.Container is { } container)
            values[$"{storage}:Container"] = container;
        if (settings is EngineSettings engine)
        {
            if (engine.Device is { } device)
                values[$"{ModelOptions.Section}:Device"] = device;
            if (engine.Precision is { } precision)
                values[$"{ModelOptions.Section}:Precision"] = precision;
        }
        return values;
    }

    /// <summary>
    /// A settings file in either of the app's forms: <c>local.settings.json</c> (a <c>Values</c> object of
    /// <c>Wuerstchen__Section__Name</c> strings) or appsettings-style nested JSON.
    /// </summary>
    private static Dictionary<string, string?> ReadSettingsFile(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new SettingsFileException($"--settings '{path}' is not valid JSON (line {e.LineNumber + 1}, column {e.BytePositionInLine + 1}).", e);
        }
        catch (IOException e)
        {
            throw new SettingsFileException($"--settings '{path}' cannot be read: {e.Message}", e);
        }
        using (document)
        {
            var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SettingsFileException($"--settings '{path}' must hold a JSON object.");
            if (root.TryGetProperty("Values", out var flat) && flat.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in flat.EnumerateObject())
                    values[property.Name.Replace("__", ConfigurationPath.KeyDelimiter, StringComparison.Ordinal)] = Scalar(property.Value);
            }
            else
            {
                Flatten(root, null, values);
            }
            return values;
        }
    }

    private static void Flatten(JsonElement element, string? prefix, Dictionary<string, string?> values)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                    Flatten(property.Value, prefix is null ? property.Name : ConfigurationPath.Combine(prefix, property.Name), values);
                break;
            case JsonValueKind.Array:
                int index = 0;
                foreach (var item in element.EnumerateArray())
                    Flatten(item, ConfigurationPath.Combine(prefix ?? "", (index++).ToString(System.Globalization.CultureInfo.InvariantCulture)), values);
                break;
            default:
                if (prefix is not null)
                    values[prefix] = Scalar(element);
                break;
        }
    }

    private static string? Scalar(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Null => null,
        _ => element.GetRawText(),
    };
}
