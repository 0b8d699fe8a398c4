using Spectre.Console.Cli;
using Wuerstchen.Cli;
using Wuerstchen.Pipeline.Models;

using var cancellation = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // The first Ctrl+C stops cleanly (running orchestrations are terminated); a second one kills the process.
    if (!cancellation.IsCancellationRequested)
    {
        e.Cancel = true;
        Console.Error.WriteLine("Stopping… (press Ctrl+C again to force an exit)");
        cancellation.Cancel();
    }
};

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("wuerstchen");
    config.PropagateExceptions();
    config.UseStrictParsing();
    config.AddCommand<GenerateCommand>("generate")
        .WithDescription("Generate images of a prompt (PNG files with the recipe embedded).")
        .WithExample("generate", "\"a red pokemon with wings\"", "--width", "1024", "--height", "1536", "--seed", "7");
    config.AddCommand<BulkCommand>("bulk")
        .WithDescription("Generate images for every prompt of a file into a folder, with a results manifest; resumable.")
        .WithExample("bulk", "prompts.txt", "--output", "pokemon", "--width", "512", "--height", "512");
    config.AddCommand<ServeCommand>("serve")
        .WithDescription("Serve the HTTP API and the web app on this machine (the same routes as the Functions app).")
        .WithExample("serve", "--port", "7071");
    config.AddCommand<FineTuneCommand>("finetune")
        .WithDescription("Fine-tune Stage C on a captioned folder into a new model version; resumable, and extended by the same command with more --steps.")
        .WithExample("finetune", "pokemon/", "--steps", "5000", "--recipe", "blog");
    config.AddBranch<ModelsSettings>("models", models =>
    {
        models.SetDescription("List, download, inspect and convert models.");
        models.AddCommand<ModelsListCommand>("list").WithDescription("The models under the model root and the fine-tuned versions in the store.");
        models.AddCommand<ModelsDownloadCommand>("download").WithDescription("Fetch a Hub repository's pipeline files (resumable, verified).")
            .WithExample("models", "download", "warp-ai/wuerstchen-prior");
        models.AddCommand<ModelsInspectCommand>("inspect").WithDescription("Components, configs, parameter counts, dtypes and checksums (fine-tuned versions too).");
        models.AddCommand<ModelsConvertCommand>("convert").WithDescription("A pickled PyTorch checkpoint to safetensors (and a loadable model folder), without running pickle code.")
            .WithExample("models", "convert", "model_v2_stage_b.pt", "effnet/", "--key", "effnet_state_dict");
    });
});

bool verbose = args.Contains("--verbose") || args.Contains("-v");
try
{
    Wuerstchen.Models.Runtime.TorchRuntime.EnsureNativesLoaded(); // the external backend finds LibTorch here, or says where it looked
    return await app.RunAsync(args, cancellation.Token);
}
catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
{
    Console.Error.WriteLine("Cancelled.");
    return ExitCodes.Cancelled;
}
catch (CommandAppException e)
{
    return Errors.Invalid(OptionErrors.Describe(e, args));
}
catch (Exception e) when (e is CliUsageException or SettingsFileException)
{
    return Errors.Report(verbose ? e.ToString() : e.Message, ExitCodes.InvalidInput);
}
catch (Microsoft.Extensions.Options.OptionsValidationException e)
{
    // A setting from the environment (Wuerstchen__Section__Key) that the app cannot run with.
    foreach (string failure in e.Failures)
        Errors.Write(failure);
    return ExitCodes.InvalidInput;
}
catch (Exception e) when (e is ModelUnavailableException or UnknownModelException or Wuerstchen.Pipeline.Hub.HubCacheMissException)
{
    return Errors.Report(verbose ? e.ToString() : e.Message, ExitCodes.ModelUnavailable);
}
catch (Exception e)
{
    return Errors.Report(verbose ? e.ToString() : e.Message, ExitCodes.Failed);
}
