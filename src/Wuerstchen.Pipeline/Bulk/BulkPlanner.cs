using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Wuerstchen.Pipeline.Generation;

namespace Wuerstchen.Pipeline.Bulk;

/// <summary>A job's prompt as numbered in the job, with what became of it in planning.</summary>
public sealed record BulkEntry(int Index, string? Prompt, string? NegativePrompt, ulong? Seed, int? Width, int? Height, string? Error);

/// <summary>
/// The batches of a bulk job (prompts of the same size and settings, at most the batch size each), which job entry
/// each batch item is, and the entries rejected in planning.
/// </summary>
public sealed record BulkPlan(IReadOnlyList<GenerationBatch> Batches, IReadOnlyList<IReadOnlyList<int>> EntriesOfBatch, IReadOnlyList<BulkEntry> Entries);

public static class BulkPlanner
{
    /// <summary>Checks the shared settings once, with a stand-in prompt: a job whose settings are invalid is rejected whole.</summary>
    public static IReadOnlyDictionary<string, string[]> SettingsErrors(BulkJob job, GenerationLimits limits, Func<string, bool> modelExists, string precision) =>
        GenerationRequestValidator.Validate(job.Settings with { Prompt = "settings check" }, limits, modelExists, precision).Errors;

    /// <param name="prompts">Every prompt of the job in order; a null prompt is a line that could not be read, with its problem.</param>
    public static BulkPlan Plan(BulkJob job, IReadOnlyList<(BulkPrompt? Prompt, string? Problem)> prompts, GenerationLimits limits,
        Func<string, bool> modelExists, string precision, int batchSize)
    {
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batches hold at least one prompt.");
        long baseSeed = job.Settings.Seed ?? DefaultBaseSeed(job.JobId);
        var entries = new List<BulkEntry>(prompts.Count);
        var groups = new Dictionary<string, (GenerationSettings Settings, List<(GenerationItem Item, int Entry)> Items)>(StringComparer.Ordinal);
        var order = new List<string>();

        for (int index = 0; index < prompts.Count; index++)
        {
            var (prompt, problem) = prompts[index];
            if (prompt is null)
            {
                entries.Add(new BulkEntry(index, null, null, null, null, null, problem ?? "The line could not be read."));
                continue;
            }
            long seed = prompt.Seed ?? ((baseSeed + index) & GenerationRequestValidator.MaxSeed);
            var request = job.Settings with
            {
                Prompt = prompt.Prompt,
                NegativePrompt = prompt.NegativePrompt ?? job.Settings.NegativePrompt,
                Seed = seed,
                Width = prompt.Width ?? job.Settings.Width,
                Height = prompt.Height ?? job.Settings.Height,
            };
            var validated = GenerationRequestValidator.Validate(request, limits, modelExists, precision);
            if (!validated.IsValid)
            {
                string error = string.Join(" ", validated.Errors.Select(e => $"{e.Key}: {string.Join(" ", e.Value)}"));
                entries.Add(new BulkEntry(index, prompt.Prompt, request.NegativePrompt, (ulong)seed, request.Width, request.Height, error));
                continue;
            }
            var batch = validated.Batch!;
            entries.Add(new BulkEntry(index, prompt.Prompt, request.NegativePrompt, (ulong)seed, batch.Settings.Width, batch.Settings.Height, null));
            string key = JsonSerializer.Serialize(batch.Settings);
            if (!groups.TryGetValue(key, out var group))
            {
                groups[key] = group = (batch.Settings, []);
                order.Add(key);
            }
            group.Items.Add((batch.Items[0], index));
        }

        var batches = new List<GenerationBatch>();
        var entriesOfBatch = new List<IReadOnlyList<int>>();
        foreach (string key in order)
        {
            var (settings, items) = groups[key];
            foreach (var chunk in items.Chunk(batchSize))
            {
                batches.Add(new GenerationBatch { Settings = settings, Items = chunk.Select(c => c.Item).ToArray() });
                entriesOfBatch.Add(chunk.Select(c => c.Entry).ToArray());
            }
        }
        return new BulkPlan(batches, entriesOfBatch, entries);
    }

    /// <summary>Reads a JSONL prompt file: one prompt string or object per line; blank lines are skipped, bad lines reported by number.</summary>
    public static async Task<IReadOnlyList<(BulkPrompt? Prompt, string? Problem)>> ReadJsonLinesAsync(Stream stream, int maxPrompts, CancellationToken cancellationToken)
    {
        var prompts = new List<(BulkPrompt?, string?)>();
        using var reader = new StreamReader(stream, Encoding.UTF8);
        int lineNumber = 0;
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
                continue;
            if (prompts.Count == maxPrompts)
                throw new InvalidDataException($"The prompt file has more than {maxPrompts} prompts.");
            try
            {
                using var document = JsonDocument.Parse(line);
                var (prompt, problem) = BulkJobParser.ParsePrompt(document.RootElement);
                prompts.Add((prompt, problem is null ? null : $"line {lineNumber}: {problem}"));
            }
            catch (JsonException e)
            {
                prompts.Add((null, $"line {lineNumber}: not JSON ({JsonErrors.Describe(e)})"));
            }
        }
        return prompts;
    }

    private static long DefaultBaseSeed(string jobId) =>
        (long)(BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(jobId))) & GenerationRequestValidator.MaxSeed);
}
