using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Hub;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Cli;

/// <summary>A model the command needs is not on disk and could not be fetched.</summary>
public sealed class ModelUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// Checks, before any work starts, that a command can run: the device is there, and the models it names are on disk.
/// A published model that is missing is downloaded into the model root's Hugging Face cache, unless offline; then, or
/// when the Hub cannot be reached, the command fails at once with the list of missing files.
/// </summary>
public static class ModelAvailability
{
    public static async Task EnsureAsync(EngineSettings settings, CancellationToken cancellationToken)
    {
        var configuration = CliConfiguration.Build(settings);
        DeviceCheck.Ensure(configuration[$"{ModelOptions.Section}:Device"] ?? "cpu", settings.Device is null ? "Wuerstchen__Models__Device" : "--device");
        string root = CliConfiguration.ModelsRoot(configuration);
        var locator = new ModelLocator(Options.Create(new ModelOptions { Root = root }));
        foreach (string model in new[] { settings.PriorModelName ?? ModelNames.DefaultPrior, settings.DecoderModelName ?? ModelNames.DefaultDecoder })
        {
            // Fine-tuned versions live in the store and are materialised when first used.
            if (Directory.Exists(model) || locator.Exists(model) || FineTunedModels.TryParse(model, out _))
                continue;
            if (!model.Contains('/'))
            {
                locator.TryResolve(model, out var searched);
                throw new ModelUnavailableException(
                    $"model '{model}' is not on disk (looked in {string.Join(", ", searched)}); point --models, --prior-model or --decoder-model at a model folder.");
            }
            var (repository, revision) = HubModelName.Split(model);
            await DownloadAsync(repository, revision ?? HuggingFaceHubClient.DefaultRevision, HubOptionsFor(root, settings.Offline), variant: null, cancellationToken);
        }
    }

    /// <summary>The Hub settings from HF_* variables, with the cache under the model root so the locator finds downloads.</summary>
    public static HubOptions HubOptionsFor(string root, bool offline)
    {
        var environment = HubOptions.FromEnvironment();
        return environment with { CacheDirectory = Path.Combine(root, "hub"), Offline = offline || environment.Offline };
    }

    /// <summary>
    /// Downloads (or, offline, checks the cache for) <paramref name="repoId"/> at <paramref name="revision"/>, showing the
    /// transfer on standard error (<see cref="DownloadProgressView"/>) and the snapshot on standard output.
    /// </summary>
    public static async Task<HubSnapshot> DownloadAsync(string repoId, string revision, HubOptions options, string? variant, CancellationToken cancellationToken)
    {
        using var client = new HuggingFaceHubClient(options);
        string name = revision == HuggingFaceHubClient.DefaultRevision ? repoId : HubModelName.WithRevision(repoId, revision);
        try
        {
            if (!options.Offline)
                Console.Error.WriteLine($"Fetching {repoId} at revision {revision} from {options.Endpoint} into {options.CacheDirectory}…");
            var snapshot = await DownloadProgressView.RunAsync(progress =>
                client.DownloadSnapshotAsync(repoId, revision, variant, progress, cancellationToken));
            Console.WriteLine($"{name}: {snapshot.Files.Count} files of commit {snapshot.Commit} at {snapshot.Directory}{(snapshot.FromCache ? " (from the cache)" : "")}");
            return snapshot;
        }
        catch (HubCacheMissException e)
        {
            throw new ModelUnavailableException(e.Message, e);
        }
    }
}
