using System.Text.Json;
using System.Text.Json.Serialization;

namespace Wuerstchen.Models.Loading;

/// <summary>Reads the JSON configuration files of the diffusers and transformers layouts (snake_case keys).</summary>
public static class ConfigReader
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
    };

    /// <summary>Deserialises <paramref name="path"/> as <typeparamref name="T"/>; a missing file or bad JSON names the file.</summary>
    public static T Read<T>(string path)
    {
        if (!File.Exists(path))
            throw new ModelConfigException(path, "the file does not exist.");
        try
        {
            using var stream = File.OpenRead(path);
            return JsonSerializer.Deserialize<T>(stream, Options)
                   ?? throw new ModelConfigException(path, "the file holds JSON null instead of an object.");
        }
        catch (JsonException e)
        {
            string where = e.Path is null ? "" : $" at {e.Path}";
            throw new ModelConfigException(path, $"invalid JSON{where}: {e.Message}", e);
        }
    }

    /// <summary>Parses <paramref name="path"/> as a JSON document the caller disposes.</summary>
    public static JsonDocument ReadDocument(string path)
    {
        if (!File.Exists(path))
            throw new ModelConfigException(path, "the file does not exist.");
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new ModelConfigException(path, $"invalid JSON: {e.Message}", e);
        }
    }

    /// <summary>Throws naming the file and the field when <paramref name="valid"/> is false.</summary>
    public static void Require(bool valid, string path, string field, string rule)
    {
        if (!valid)
            throw new ModelConfigException(path, $"'{field}' {rule}.");
    }
}
