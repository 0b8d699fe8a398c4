using System.Text.Json;
using System.Text.RegularExpressions;
using Wuerstchen.Pipeline.Generation;

namespace Wuerstchen.Pipeline.Bulk;

/// <summary>One prompt of a bulk job; size and seed fall back to the job's settings.</summary>
public sealed record BulkPrompt
{
    public required string Prompt { get; init; }
    public string? NegativePrompt { get; init; }
    public long? Seed { get; init; }
    public int? Width { get; init; }
    public int? Height { get; init; }
}

/// <summary>
/// A bulk generation job as queued: an id, the settings all prompts share, and the prompts — inline, or in a JSONL blob
/// (one prompt string or <see cref="BulkPrompt"/> object per line).
/// </summary>
public sealed record BulkJob
{
    public required string JobId { get; init; }

    /// <summary>Shared settings; its prompt field is ignored. Seeds: each prompt's own, else this seed + the prompt's index.</summary>
    public GenerationRequest Settings { get; init; } = new();

    public IReadOnlyList<BulkPrompt>? Prompts { get; init; }

    public string? PromptsBlob { get; init; }
}

/// <summary>A queue message that can never succeed, with the reason; recorded, never retried.</summary>
public sealed record BulkJobRejection(string Reason);

public static partial class BulkJobParser
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,62}$")]
    private static partial Regex JobIdPattern();

    /// <summary>
    /// Parses and checks a queue message; a message that can never succeed yields a rejection naming the problem. Inline
    /// prompts stop being read at the first one past <paramref name="maxPrompts"/> (<c>Wuerstchen:Bulk:MaxPrompts</c>).
    /// </summary>
    public static (BulkJob? Job, BulkJobRejection? Rejection) Parse(string message, int maxPrompts)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(message);
        }
        catch (JsonException e)
        {
            return (null, new BulkJobRejection($"The message is not JSON: {JsonErrors.Describe(e)}"));
        }

        using (document)
        {
            try
            {
                return Parse(document.RootElement, maxPrompts);
            }
            catch (InvalidOperationException e)
            {
                return (null, new BulkJobRejection($"The message holds {NotText(e)}."));
            }
        }
    }

    private static (BulkJob? Job, BulkJobRejection? Rejection) Parse(JsonElement root, int maxPrompts)
    {
        if (root.ValueKind != JsonValueKind.Object)
            return (null, new BulkJobRejection("The message must be a JSON object with jobId, settings and prompts or promptsBlob."));

        var allowed = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "jobId", "settings", "prompts", "promptsBlob" };
        var unknown = root.EnumerateObject().Select(p => p.Name).Where(n => !allowed.Contains(n)).ToArray();
        if (unknown.Length > 0)
            return (null, new BulkJobRejection($"Unknown field(s): {string.Join(", ", unknown)}."));

        string? jobId = root.TryGetProperty("jobId", out var id) && id.ValueKind == JsonValueKind.String ? id.GetString() : null;
        if (jobId is null || !JobIdPattern().IsMatch(jobId))
            return (null, new BulkJobRejection("jobId must be 1 … 63 lowercase letters, digits or hyphens, starting with a letter or digit."));

        GenerationRequest settings = new();
        if (root.TryGetProperty("settings", out var settingsElement))
        {
            try
            {
                settings = settingsElement.Deserialize<GenerationRequest>(Json) ?? new GenerationRequest();
            }
            catch (JsonException e)
            {
                return (null, new BulkJobRejection($"settings: {JsonErrors.Describe(e)}"));
            }
        }

        bool hasPrompts = root.TryGetProperty("prompts", out var promptsElement) && promptsElement.ValueKind != JsonValueKind.Null;
        string? promptsBlob = root.TryGetProperty("promptsBlob", out var blobElement) && blobElement.ValueKind == JsonValueKind.String ? blobElement.GetString() : null;
        if (hasPrompts == (promptsBlob is not null))
            return (null, new BulkJobRejection("Give exactly one of prompts (a list) and promptsBlob (a JSONL blob name)."));

        List<BulkPrompt>? prompts = null;
        if (hasPrompts)
        {
            if (promptsElement.ValueKind != JsonValueKind.Array)
                return (null, new BulkJobRejection("prompts must be a list."));
            prompts = [];
            int index = 0;
            foreach (var element in promptsElement.EnumerateArray())
            {
                if (index == maxPrompts)
                    return (null, new BulkJobRejection($"prompts must hold 1 … {maxPrompts} prompts; got more."));
                var (prompt, problem) = ParsePrompt(element);
                if (problem is not null)
                    return (null, new BulkJobRejection($"prompts[{index}]: {problem}"));
                prompts.Add(prompt!);
                index++;
            }
            if (prompts.Count == 0)
                return (null, new BulkJobRejection($"prompts must hold 1 … {maxPrompts} prompts; got none."));
        }

        return (new BulkJob { JobId = jobId, Settings = settings, Prompts = prompts, PromptsBlob = promptsBlob }, null);
    }

    /// <summary>A prompt given as a string or as an object (<c>prompt</c> or <c>text</c>, <c>negativePrompt</c>, <c>seed</c>, <c>width</c>, <c>height</c>).</summary>
    public static (BulkPrompt? Prompt, string? Problem) ParsePrompt(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.String)
        {
            try
            {
                return (new BulkPrompt { Prompt = element.GetString()! }, null);
            }
            catch (InvalidOperationException e)
            {
                return (null, NotText(e));
            }
        }
        if (element.ValueKind != JsonValueKind.Object)
            return (null, "a prompt must be a string or an object.");
        try
        {
            var line = element.Deserialize<PromptLine>(Json)!;
            string? text = line.Prompt ?? line.Text;
            if (text is null)
                return (null, "the object has no prompt (or text) field.");
            return (new BulkPrompt { Prompt = text, NegativePrompt = line.NegativePrompt, Seed = line.Seed, Width = line.Width, Height = line.Height }, null);
        }
        catch (JsonException e)
        {
            return (null, JsonErrors.Describe(e));
        }
        catch (InvalidOperationException e)
        {
            return (null, NotText(e));
        }
    }

    /// <summary>System.Text.Json reads an unpaired surrogate escape (such as \ud800) and then refuses to make a string of it.</summary>
    private static string NotText(InvalidOperationException e) => $"a string is not valid Unicode text ({e.Message})";

    private sealed record PromptLine(string? Prompt, string? Text, string? NegativePrompt, long? Seed, int? Width, int? Height);
}
