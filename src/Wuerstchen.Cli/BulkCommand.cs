using System.ComponentModel;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;

namespace Wuerstchen.Cli;

/// <summary>
/// <c>wuerstchen bulk PROMPTS</c>: a prompts file through the BulkGenerate orchestration into a folder of images and a
/// results manifest. Resumable: the same command again does only what is missing (blobs are named by their content).
/// </summary>
public sealed class BulkCommand : AsyncCommand<BulkCommand.Settings>
{
    public sealed class Settings : SamplingSettings
    {
        [CommandArgument(0, "<PROMPTS>")]
        [Description("A text file (one prompt per line) or a .jsonl file (a prompt string or {prompt, negativePrompt, seed, width, height} per line).")]
        public string PromptsFile { get; init; } = "";

        [CommandOption("--job-id <ID>")]
        [Description("Names the job (lowercase letters, digits, hyphens). Default: derived from the prompts and settings, so a re-run resumes.")]
        public string? JobId { get; init; }

        [CommandOption("--batch-size <N>")]
        [Description("Prompts per Stage C / Stage B forward pass. Default: Wuerstchen__Bulk__BatchSize, else follows the device (4 on a CPU, 16 on an 80 GB GPU).")]
        public int? BatchSize { get; init; }

        public override ValidationResult Validate()
        {
            var result = base.Validate();
            if (!result.Successful)
                return result;
            if (!File.Exists(PromptsFile))
                return ValidationResult.Error($"The prompts file '{PromptsFile}' does not exist.");
            return BatchSize is < 1 ? ValidationResult.Error("--batch-size must be at least 1.") : ValidationResult.Success();
        }
    }

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        await ModelAvailability.EnsureAsync(settings, cancellationToken);
        byte[] lines = await PromptLinesAsync(settings.PromptsFile, cancellationToken);
        var extra = new Dictionary<string, string?>();
        if (settings.BatchSize is { } batchSize)
            extra["Wuerstchen:Bulk:BatchSize"] = batchSize.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await using var engine = await LocalEngine.StartAsync(settings, extra, cancellationToken);

        var jobSettings = settings.ToRequest(engine);
        string jobId = settings.JobId ?? DefaultJobId(lines, jobSettings);
        string promptsBlob = $"inputs/{jobId}.jsonl";
        await engine.Store.WriteAsync(promptsBlob, new MemoryStream(lines), new BlobWriteOptions { ContentType = "application/x-ndjson" }, cancellationToken);

        string message = JsonSerializer.Serialize(new { jobId, settings = jobSettings, promptsBlob }, Json);
        var outcome = await engine.Services.GetRequiredService<BulkJobIntake>().AcceptAsync(engine.Client, message, $"cli-{jobId}", cancellationToken);
        if (outcome.Disposition == IntakeDisposition.Rejected)
            return Errors.Invalid(outcome.Reason!);

        string instanceId = BulkGenerateOrchestration.InstanceIdFor(jobId);
        Console.WriteLine($"Bulk job {jobId}");
        try
        {
            var done = await FollowAsync(engine.Client, instanceId, cancellationToken);
            if (done.RuntimeStatus != OrchestrationRuntimeStatus.Completed)
            {
                await FailureDetails.WriteAsync(engine.Client, instanceId, settings.Verbose);
                return Errors.Failed($"The bulk job {done.RuntimeStatus.ToString().ToLowerInvariant()}: {Wuerstchen.Workflows.WorkflowFailures.Message(done.FailureDetails)}");
            }
            var summary = done.ReadOutputAs<BulkSummary>()!;
            var entries = await ExportAsync(engine.Store, jobId, settings.Output, cancellationToken);
            foreach (var entry in entries.Where(e => e.Status != "succeeded"))
                Errors.Write($"{(entry.Status == "rejected" ? "rejected" : "failed")}: {(entry.Error ?? "").TrimEnd()}{(entry.Status == "rejected" ? "" : $" (prompt {entry.Index}: \"{entry.Prompt}\")")}");
            Console.WriteLine($"{summary.Succeeded} succeeded, {summary.Failed} failed, {summary.Rejected} rejected of {summary.Total}; images and manifest.jsonl in {Path.GetFullPath(settings.Output)}");
            return summary.Failed + summary.Rejected == 0 ? ExitCodes.Success : ExitCodes.Failed;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await engine.Client.TerminateInstanceAsync(instanceId, "Cancelled from the command line.", CancellationToken.None);
            throw;
        }
    }

    /// <summary>The prompts as JSON lines: a .jsonl file as it is, a text file one JSON string per non-blank line (blank lines stay, so line numbers match the file).</summary>
    private static async Task<byte[]> PromptLinesAsync(string path, CancellationToken cancellationToken)
    {
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
            return await File.ReadAllBytesAsync(path, cancellationToken);
        var text = new StringBuilder();
        foreach (string line in await File.ReadAllLinesAsync(path, cancellationToken))
        {
            if (!string.IsNullOrWhiteSpace(line))
                text.Append(JsonSerializer.Serialize(line.Trim()));
            text.Append('\n');
        }
        return Encoding.UTF8.GetBytes(text.ToString());
    }

    private static string DefaultJobId(byte[] lines, object settings)
    {
        byte[] recipe = JsonSerializer.SerializeToUtf8Bytes(settings, Json);
        return "cli-" + Convert.ToHexStringLower(SHA256.HashData([.. lines, .. recipe]))[..16];
    }

    private static async Task<OrchestrationMetadata> FollowAsync(DurableTaskClient client, string instanceId, CancellationToken cancellationToken)
    {
        string? last = null;
        while (true)
        {
            var instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: true, cancellationToken)
                           ?? throw new InvalidOperationException($"The bulk orchestration {instanceId} disappeared.");
            if (instance.IsCompleted)
                return instance;
            if (instance.SerializedCustomStatus is { } custom && JsonSerializer.Deserialize<BulkCustomStatus>(custom) is { } status)
            {
                string line = $"Batches: {status.CompletedBatches}/{status.TotalBatches}";
                if (line != last)
                    Console.WriteLine(last = line);
            }
            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
        }
    }

    /// <summary>Copies every image into <paramref name="output"/> and writes a manifest there naming the local files.</summary>
    private static async Task<IReadOnlyList<BulkManifestEntry>> ExportAsync(IBlobStore store, string jobId, string output, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(output);
        var manifest = new StringBuilder();
        var entries = await BulkManifestWriter.ReadAsync(store, jobId, cancellationToken);
        foreach (var entry in entries)
        {
            var files = new List<string>();
            for (int n = 0; n < entry.Images.Count; n++)
            {
                string file = $"{entry.Index:D5}-{GenerateCommand.Slug(entry.Prompt ?? "")}-{n}.png";
                await using (var source = await store.OpenReadAsync(entry.Images[n], cancellationToken))
                await using (var target = File.Create(Path.Combine(output, file)))
                    await source.CopyToAsync(target, cancellationToken);
                files.Add(file);
            }
            manifest.Append(JsonSerializer.Serialize(entry with { Images = files }, Json)).Append('\n');
        }
        await File.WriteAllTextAsync(Path.Combine(output, "manifest.jsonl"), manifest.ToString(), cancellationToken);
        return entries;
    }
}
