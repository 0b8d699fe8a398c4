using System.Text.Json;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Tests.Conversion;

namespace Wuerstchen.Cli.Tests;

public sealed class FineTuneCliTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Coloured squares with captions as name.png + name.txt pairs, one image without a caption, one caption too long for CLIP.</summary>
    private string WriteDataset(string name = "shapes")
    {
        string folder = _temp.File(name);
        Directory.CreateDirectory(folder);
        var colours = new (string Name, Rgb24 Colour)[] { ("red", new(220, 30, 30)), ("blue", new(30, 60, 220)), ("green", new(30, 170, 60)), ("yellow", new(240, 210, 20)) };
        foreach (var (colour, rgb) in colours)
        {
            using var image = new Image<Rgb24>(32, 32, new Rgb24(255, 255, 255));
            for (int y = 8; y < 24; y++)
            for (int x = 8; x < 24; x++)
                image[x, y] = rgb;
            image.SaveAsPng(Path.Combine(folder, $"{colour}.png"));
            File.WriteAllText(Path.Combine(folder, $"{colour}.txt"), $"a {colour} square");
        }
        File.WriteAllText(Path.Combine(folder, "yellow.txt"), "a yellow square " + string.Concat(Enumerable.Repeat("with many many words ", 20)));
        File.Copy(Path.Combine(folder, "red.png"), Path.Combine(folder, "uncaptioned.png"));
        return folder;
    }

    /// <summary>A model root with the fixture pipelines under their names, and the encoder only when asked.</summary>
    private string ModelRoot(bool withEffnet)
    {
        string root = _temp.File(withEffnet ? "models-with-effnet" : "models");
        Directory.CreateDirectory(root);
        Directory.CreateSymbolicLink(Path.Combine(root, "prior-pipeline"), ParityFixtures.PathOf("models/prior-pipeline"));
        Directory.CreateSymbolicLink(Path.Combine(root, "decoder-pipeline"), ParityFixtures.PathOf("models/decoder-pipeline"));
        if (withEffnet)
            Directory.CreateSymbolicLink(Path.Combine(root, "effnet"), ParityFixtures.PathOf("models/effnet"));
        return root;
    }

    private static string[] Small(string models, string store, string output) =>
    [
        "--recipe", "diffusers", "--batch-size", "2", "--resolution", "128",
        "--validation-prompt", "a red square", "--validation-size", "128", "--validation-prior-steps", "2", "--validation-decoder-steps", "2",
        "--models", models, "--prior-model", "prior-pipeline", "--decoder-model", "decoder-pipeline", "--store", store, "-o", output,
    ];

    private static readonly Dictionary<string, string?> FastProgress = new() { ["Wuerstchen__Training__ProgressInterval"] = "00:00:00.100" };

    /// <summary>Training on a 2-core machine running the other test projects beside this one takes minutes, not seconds.</summary>
    private static readonly TimeSpan TrainingTimeout = TimeSpan.FromMinutes(10);

    [Fact]
    public async Task FinetuneShowsProgressInsideChunksResumesAndIsExtendedByTheSameCommandWithMoreSteps()
    {
        string dataset = WriteDataset();
        string store = _temp.File("store"), output = _temp.File("out"), models = ModelRoot(withEffnet: true);
        string[] arguments = ["finetune", dataset, "--steps-per-chunk", "15", "--gradient-accumulation", "2", .. Small(models, store, output)];

        var first = await CliProcess.RunAsync([.. arguments, "--steps", "30"], FastProgress, Token, TrainingTimeout);
        Assert.True(first.ExitCode == 0, first.ToString());
        string[] lines = first.Output.Split('\n', StringSplitOptions.TrimEntries);
        // Inside the chunks, not only at their ends: step, loss, rate, speed and time left.
        var inside = lines.Where(l => l.StartsWith("Training: step ", StringComparison.Ordinal) && !l.StartsWith("Training: step 0/", StringComparison.Ordinal)
            && !l.StartsWith("Training: step 15/", StringComparison.Ordinal) && !l.StartsWith("Training: step 30/", StringComparison.Ordinal)).ToArray();
        Assert.True(inside.Length > 0, first.ToString());
        Assert.All(inside, l => Assert.Matches(@"^Training: step \d+/30, loss \d\.\d{4}, lr [0-9.E+-]+, [0-9.]+ steps/s, ETA \d+", l));
        // The dataset report: each problem once, in plain words; the long caption with its count.
        Assert.Contains("Dataset: 4 item(s) to train on; 1 problem(s):", lines);
        Assert.Contains("uncaptioned.png: missing caption: no uncaptioned.txt.", lines);
        Assert.DoesNotContain("skipped uncaptioned", first.Output);
        Assert.Contains("1 caption(s) are longer than the text encoder reads (77 tokens) and were cut:", lines);
        Assert.Contains(lines, l => l.StartsWith("yellow.png (", StringComparison.Ordinal) && l.EndsWith(" tokens)", StringComparison.Ordinal));
        string version = first.Output.Split("Published ")[1].Split(' ')[0];
        Assert.Matches("^finetuned/cli-[0-9a-f]{16}$", version);
        string firstRevision = first.Output.Split("as revision ")[1].Split(' ')[0];

        // The newest checkpoint loses its manifest; the same command with more steps resumes from the one before,
        // says so and why, and extends the run: same run, a new revision.
        string runId = version["finetuned/".Length..];
        File.Delete(Path.Combine(store, "training", "runs", runId, "checkpoints", "00000030", "manifest.json"));
        var extended = await CliProcess.RunAsync([.. arguments, "--steps", "36"], FastProgress, Token, TrainingTimeout);
        Assert.True(extended.ExitCode == 0, extended.ToString());
        lines = extended.Output.Split('\n', StringSplitOptions.TrimEntries);
        Assert.Contains("Resumed from checkpoint 15.", lines);
        Assert.Contains(lines, l => l.StartsWith("Skipped checkpoint 30: incomplete", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.StartsWith(':'));
        Assert.Contains($"Published {version} ", extended.Output);
        Assert.Contains("after 36 steps", extended.Output);
        string secondRevision = extended.Output.Split("as revision ")[1].Split(' ')[0];
        Assert.NotEqual(firstRevision, secondRevision);

        // Fewer steps than the run has trained: refused before anything runs.
        var fewer = await CliProcess.RunAsync([.. arguments, "--steps", "20"], cancellationToken: Token);
        Assert.Equal(2, fewer.ExitCode);
        Assert.Equal($"error: --steps: Run '{runId}' has already trained 36 steps; ask for 36 (which publishes it as it is) or more.", fewer.Error.Trim());

        // models list and inspect show the fine-tuned version (newest and older revision) from the store.
        var list = await CliProcess.RunAsync(["models", "list", "--models", models, "--store", store], cancellationToken: Token);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains($"{version}\tfine-tuned\t36 steps of diffusers on prior-pipeline, revision {secondRevision} (newest)", list.Output);
        Assert.Contains($"{version}/{firstRevision}\tfine-tuned\t30 steps", list.Output);
        Assert.Contains("prior-pipeline\tWuerstchenPriorPipeline", list.Output);
        var inspect = await CliProcess.RunAsync(["models", "inspect", version, "--models", models, "--store", store, "--json"], cancellationToken: Token);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        var report = JsonDocument.Parse(inspect.Output).RootElement;
        Assert.Equal((secondRevision, 36), (report.GetProperty("fineTuned").GetProperty("revision").GetString(), report.GetProperty("fineTuned").GetProperty("steps").GetInt32()));
        Assert.Contains(report.GetProperty("components").EnumerateArray(), c => c.GetProperty("name").GetString() == "prior");

        var generated = await CliProcess.RunAsync(["generate", "a red square", "-W", "128", "-H", "128", "--prior-steps", "2", "--decoder-steps", "2",
            "--models", models, "--decoder-model", "decoder-pipeline", "--prior-model", version, "--store", store, "-o", _temp.File("gen")], cancellationToken: Token, timeout: TrainingTimeout);
        Assert.True(generated.ExitCode == 0, generated.ToString());
    }

    [Fact]
    public async Task AMissingEncoderIsRefusedBeforeTheRunIsCreatedAndTheConvertedOneIsTakenNext()
    {
        string dataset = WriteDataset();
        string store = _temp.File("store"), output = _temp.File("out"), models = ModelRoot(withEffnet: false);
        string[] arguments = ["finetune", dataset, "--steps", "2", .. Small(models, store, output)];

        var missing = await CliProcess.RunAsync(arguments, cancellationToken: Token);
        Assert.Equal(3, missing.ExitCode);
        Assert.StartsWith("error: --effnet: The EfficientNet encoder 'effnet'", missing.Error);
        Assert.Contains("models convert", missing.Error);
        Assert.Single(missing.Error.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(store, "training", "runs")), "a run was created although its encoder is missing");

        // Weights without config.json (what converting to a file used to leave) are named as such.
        string effnet = Path.Combine(models, "effnet");
        Directory.CreateDirectory(effnet);
        File.Copy(ParityFixtures.PathOf("models/effnet/model.safetensors"), Path.Combine(effnet, "model.safetensors"));
        var noConfig = await CliProcess.RunAsync(arguments, cancellationToken: Token);
        Assert.Equal(3, noConfig.ExitCode);
        Assert.Contains("is a folder without config.json", noConfig.Error);

        // models convert into the folder writes the weights and the config the tensors imply: the folder loads.
        Directory.Delete(effnet, recursive: true);
        string checkpoint = _temp.File("model_v2_stage_b.pt");
        var (tensors, _) = SafetensorsFile.ReadAll(File.OpenRead(ParityFixtures.PathOf("models/effnet/model.safetensors")), "fixture effnet");
        TorchSaveWriter.Save(checkpoint, new Dictionary<string, object?> { ["effnet_state_dict"] = new TorchSaveWriter.StateDict(tensors) });
        foreach (var tensor in tensors.Values)
            tensor.Dispose();
        var converted = await CliProcess.RunAsync(["models", "convert", checkpoint, effnet, "--key", "effnet_state_dict"], cancellationToken: Token);
        Assert.True(converted.ExitCode == 0, converted.ToString());
        Assert.Contains($"Wrote {Path.Combine(effnet, "config.json")}", converted.Output);
        var expected = JsonDocument.Parse(File.ReadAllText(ParityFixtures.PathOf("models/effnet/config.json"))).RootElement;
        var written = JsonDocument.Parse(File.ReadAllText(Path.Combine(effnet, "config.json"))).RootElement;
        foreach (string key in new[] { "c_latent", "c_cond", "effnet" })
            Assert.Equal(expected.GetProperty(key).ToString(), written.GetProperty(key).ToString());

        var trained = await CliProcess.RunAsync(arguments, cancellationToken: Token, timeout: TrainingTimeout);
        Assert.True(trained.ExitCode == 0, trained.ToString());
        Assert.Contains("Published finetuned/", trained.Output);
    }

    [Fact]
    public async Task ImpossibleRecipeValuesAreRefusedByTheirOptionsBeforeAnythingRuns()
    {
        string dataset = WriteDataset();
        string store = _temp.File("store");
        var result = await CliProcess.RunAsync(["finetune", dataset, "--recipe", "blog", "--steps", "10", "--ema-update-every", "50", "--warmup-steps", "20",
            "--caption-dropout", "2", "--validation-prompt", "a", "--validation-prompt", "b", "--validation-seed", "1",
            .. Small(ModelRoot(withEffnet: true), store, _temp.File("out"))[2..]], cancellationToken: Token);

        Assert.Equal(2, result.ExitCode);
        string[] lines = result.Error.Trim().Split('\n');
        Assert.Contains(lines, l => l.StartsWith("error: --ema-update-every: 50 is more than the run's 10 steps: the EMA would never update", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("error: --warmup-steps: 20 is not fewer than the run's 10 steps", StringComparison.Ordinal));
        Assert.Contains("error: --caption-dropout: 2 is outside 0 … 1.", lines);
        Assert.Contains(lines, l => l.StartsWith("error: --validation-seed: Give one seed per validation prompt (3); got 1.", StringComparison.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(store, "training", "runs")));
    }

    [Fact]
    public async Task FailuresAreOneLineInTheUsersTermsAndDatasetLimitsComeFromTheAppsSettings()
    {
        string models = ModelRoot(withEffnet: true), store = _temp.File("store");
        string[] options = ["--steps", "2", .. Small(models, store, _temp.File("out"))];

        var file = await CliProcess.RunAsync(["finetune", Path.Combine(WriteDataset("as-file"), "red.png"), .. options], cancellationToken: Token);
        Assert.Equal(2, file.ExitCode);
        Assert.Contains("is a file; give the folder that holds the images", file.Error);

        // The settings file sets a pixel limit, the environment another, and the environment wins over the file.
        string settings = _temp.File("local.settings.json");
        await File.WriteAllTextAsync(settings, """{ "IsEncrypted": false, "Values": { "Wuerstchen__Training__MaxImagePixels": "100", "Wuerstchen__Models__Root": "/nowhere" } }""", Token);
        string dataset = WriteDataset("too-big");
        var result = await CliProcess.RunAsync(["finetune", dataset, "--settings", settings, .. options],
            new Dictionary<string, string?> { ["Wuerstchen__Training__MaxImagePixels"] = "200" }, Token, TrainingTimeout);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("red.png: oversized: 32×32 pixels (the limit is 200).", result.Output);
        string error = result.Error.Trim();
        Assert.Single(error.Split('\n'));
        Assert.StartsWith("error: the fine-tune failed: Run 'cli-", error);
        Assert.Contains("none of the dataset's images can be used", error);
        Assert.DoesNotContain("Task '", error);
        string report = error[(error.IndexOf("listed in ", StringComparison.Ordinal) + "listed in ".Length)..].TrimEnd(')', '.');
        Assert.True(Path.IsPathRooted(report) && File.Exists(report), $"the report path '{report}' is not a file");

        // An options' value beats the environment's and the file's: --models over Wuerstchen__Models__Root.
        var listed = await CliProcess.RunAsync(["models", "list", "--settings", settings, "--models", models, "--store", store], cancellationToken: Token);
        Assert.Contains("prior-pipeline\tWuerstchenPriorPipeline", listed.Output);
        var fromFile = await CliProcess.RunAsync(["models", "list", "--settings", settings, "--store", store], cancellationToken: Token);
        Assert.Contains("No models under /nowhere", fromFile.Output);
    }

    [Fact]
    public async Task AnEmptyDatasetSaysSoInsteadOfCountingNothing()
    {
        Directory.CreateDirectory(_temp.File("nothing"));
        var result = await CliProcess.RunAsync(["finetune", _temp.File("nothing"), "--steps", "2", .. Small(ModelRoot(withEffnet: true), _temp.File("store"), _temp.File("out"))],
            cancellationToken: Token, timeout: TrainingTimeout);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("the dataset holds no captioned images", result.Error);
        Assert.DoesNotContain("all 0", result.Error);
    }

    [Fact]
    public async Task AMissingDatasetFolderIsAUsageError()
    {
        var result = await CliProcess.RunAsync(["finetune", _temp.File("nowhere"), .. CliProcess.FixtureModels()], cancellationToken: Token);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("does not exist", result.Error);
    }
}
