using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;

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
    public static IReadOnlyDictionary<string, string[]> SettingsErrors(BulkJob job, GenerationLimits limits, Func<string, ModelRole, string?> modelProblem, string precision) =>
        GenerationRequestValidator.Validate(job.Settings with { Prompt = "settings check" }, limits, modelProblem, precision).Errors;

    /// <param name="prompts">Every prompt of the job in order; a null prompt is a line that could not be read, with its problem.</param>
    public static BulkPlan Plan(BulkJob job, IReadOnlyList<(BulkPrompt? Prompt, string? Problem)> prompts, GenerationLimits limits,
        Func<string, ModelRole, string?> modelProblem, string precision, int batchSize)
    {
        if (batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batches hold at least one prompt.");
        // Every prompt names the job's models: look each up once.
        var checkedModels = new Dictionary<(string, ModelRole), string?>();
        string? CheckModel(string name, ModelRole role) =>
            checkedModels.TryGetValue((name, role), out var problem) ? problem : checkedModels[(name, role)] = modelProblem(name, role);
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
            var validated = GenerationRequestValidator.Validate(request, limits, CheckModel, precision);
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

    /// <summary>The work of every planned prompt together, in pixel-steps (see <see cref="GenerationSettings.WorkPerPrompt"/>).</summary>
    public static long WorkOf(BulkPlan plan) => plan.Batches.Sum(b => b.Items.Count * b.Settings.WorkPerPrompt);

    /// <summary>The job's budget problem, or null when its planned work is within <paramref name="maxWork"/>.</summary>
    public static string? WorkProblem(BulkPlan plan, long maxWork)
    {
        long work = WorkOf(plan);
        return work <= maxWork ? null : FormattableString.Invariant(
            $"The job costs {work:N0} pixel-steps over its {plan.Entries.Count(e => e.Error is null)} valid prompts; the limit is {maxWork:N0} (Wuerstchen:Bulk:MaxWorkPerJob). Split it into smaller jobs.");
    }

    /// <summary>The plan of a job rejected whole: no batches, every entry rejected with <paramref name="reason"/>.</summary>
    public static BulkPlan RejectWhole(BulkPlan plan, string reason) =>
        new([], [], plan.Entries.Select(e => e with { Error = e.Error ?? reason }).ToArray());

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

    /// <summary>
    /// Counts the prompts (non-blank lines) of a JSONL prompt file without keeping any of it, stopping once the count
    /// passes <paramref name="maxPrompts"/>: memory stays one buffer whatever the file's size or line lengths.
    /// </summary>
    /// <returns>The count, or <paramref name="maxPrompts"/> + 1 when the file holds more.</returns>
    public static async Task<int> CountPromptLinesAsync(Stream stream, int maxPrompts, CancellationToken cancellationToken)
    {
        var buffer = new byte[1 << 16];
        int count = 0;
        bool lineHasText = false;
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            for (int i = 0; i < read; i++)
            {
                byte b = buffer[i];
                if (b == (byte)'\n')
                {
                    if (lineHasText && ++count > maxPrompts)
                        return count;
                    lineHasText = false;
                }
                else if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\f' or (byte)'\v'))
                {
                    lineHasText = true;
                }
            }
        }
        return lineHasText ? count + 1 : count;
    }

    private static long DefaultBaseSeed(string jobId) =>
        (long)(BitConverter.ToUInt64(SHA256.HashData(Encoding.UTF8.GetBytes(jobId))) & GenerationRequestValidator.MaxSeed);
}
