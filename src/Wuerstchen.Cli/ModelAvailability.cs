using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Cli;

/// <summary>A model the command needs is not on disk and could not be fetched.</summary>
public sealed class ModelUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Makes sure the models a command names are on disk before any work starts.</summary>
public static class ModelAvailability
{
    public static Task EnsureAsync(EngineSettings settings, CancellationToken cancellationToken)
    {
        var options = new ModelOptions { Root = settings.ModelsRoot ?? LocalEngine.DefaultModelsRoot() };
        var locator = new ModelLocator(Options.Create(options));
        foreach (string model in new[] { settings.PriorModel ?? ModelNames.DefaultPrior, settings.DecoderModel ?? ModelNames.DefaultDecoder })
        {
            if (Directory.Exists(model) || locator.Exists(model))
                continue;
            locator.TryResolve(model, out var searched);
            throw new ModelUnavailableException(
                $"model '{model}' is not on disk (looked in {string.Join(", ", searched)}); download it with `wuerstchen models download {model}` or point --models / --prior-model / --decoder-model at a model folder.");
        }
        return Task.CompletedTask;
    }
}
