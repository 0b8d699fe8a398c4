using System.Diagnostics;
using System.Text;
using System.Text.Json;
using TorchSharp;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Tests.Conversion;
using Wuerstchen.Pipeline.Tests.Hub;

namespace Wuerstchen.Cli.Tests;

public sealed class CliTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private string[] Store() => ["--store", _temp.File("store")];

    [Fact]
    public async Task GenerateWritesPngsWithTheirRecipeAndReportsProgress()
    {
        string output = _temp.File("out");
        var result = await CliProcess.RunAsync(["generate", "a red pokemon with wings", "-W", "256", "-H", "128", "-i", "2", "--seed", "1234",
            "--prior-steps", "3", "--decoder-steps", "2", "-o", output, .. CliProcess.FixtureModels(), .. Store()], cancellationToken: Token);

        Assert.True(result.ExitCode == 0, result.ToString());
        // Without a terminal: every step of every stage, in order, and no raw status words.
        string[] progress = result.Output.Split('\n', StringSplitOptions.TrimEntries).Where(l => l.StartsWith("Stage ", StringComparison.Ordinal)).ToArray();
        Assert.Equal(["Stage C (prior): starting (3 steps)", "Stage C (prior): step 1/3", "Stage C (prior): step 2/3", "Stage C (prior): step 3/3",
            "Stage B (decoder): starting (2 steps)", "Stage B (decoder): step 1/2", "Stage B (decoder): step 2/2",
            "Stage A (decode): starting (1 step)", "Stage A (decode): step 1/1"], progress);
        Assert.DoesNotContain(result.Output.Split('\n', StringSplitOptions.TrimEntries), l => l is "Pending" or "Running" or "Completed");
        string[] files = Directory.GetFiles(output, "*.png").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(2, files.Length);
        foreach (string file in files)
            Assert.Contains($"Wrote {file}", result.Output);
        var recipe = PngImages.ReadRecipe(File.OpenRead(files[1]));
        Assert.Equal(("a red pokemon with wings", 1234UL, 1235UL, 1), (recipe!.Prompt, recipe.Seed, recipe.DecoderSeed, recipe.ImageIndex));
    }

    [Fact]
    public async Task AnInvalidRequestIsOneLinePerFieldAndExitCodeTwo()
    {
        var result = await CliProcess.RunAsync(["generate", "x", "-W", "1000", "-i", "99", .. CliProcess.FixtureModels(), .. Store()], cancellationToken: Token);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("error: --width: 1000 px is not a multiple of 128; the nearest valid sizes are 896 and 1024.", result.Error);
        Assert.Contains("error: --images:", result.Error);
        Assert.DoesNotContain("   at ", result.Error);

        var steps = await CliProcess.RunAsync(["generate", "x", "--prior-steps", "999", "--decoder-guidance", "99", .. CliProcess.FixtureModels(), .. Store()], cancellationToken: Token);
        Assert.Equal(2, steps.ExitCode);
        Assert.Contains("error: --prior-steps: 999 is outside 1 … 200.", steps.Error);
        Assert.Contains("error: --decoder-guidance:", steps.Error);
        Assert.DoesNotContain("priorSteps", steps.Error);
    }

    [Fact]
    public async Task TheRealWeightsFailFastWhenOffline()
    {
        var watch = Stopwatch.StartNew();
        var offline = await CliProcess.RunAsync(["generate", "a cat", "--models", _temp.File("empty-root"), .. Store()],
            new Dictionary<string, string?> { ["HF_HUB_OFFLINE"] = "1" }, Token);
        Assert.Equal(3, offline.ExitCode);
        Assert.Contains("warp-ai/wuerstchen-prior", offline.Error);
        Assert.Contains("offline", offline.Error);

        var flag = await CliProcess.RunAsync(["generate", "a cat", "--models", _temp.File("empty-root"), "--offline", .. Store()], cancellationToken: Token);
        Assert.Equal(3, flag.ExitCode);
        Assert.DoesNotContain("Fetching", flag.Output + flag.Error);
        Assert.Contains("offline mode is on (HF_HUB_OFFLINE=1 or --offline)", flag.Error);
        Assert.DoesNotContain("HubOptions", flag.Error);

        var unreachable = await CliProcess.RunAsync(["generate", "a cat", "--models", _temp.File("empty-root"), .. Store()],
            new Dictionary<string, string?> { ["HF_ENDPOINT"] = "http://127.0.0.1:9" }, Token);
        Assert.Equal(3, unreachable.ExitCode);
        Assert.Contains("cannot be reached", unreachable.Error);
        Assert.True(watch.Elapsed < TimeSpan.FromMinutes(1), $"failing took {watch.Elapsed}");
    }

    [Fact]
    public async Task BulkWritesAFolderOfImagesAndAManifestAndResumes()
    {
        string prompts = _temp.File("prompts.jsonl");
        await File.WriteAllTextAsync(prompts, "\"a lighthouse\"\n{\"prompt\": \"a fox\", \"width\": 256}\nnot json\n\"a kite\"\n", Token);
        string output = _temp.File("bulk");
        string[] arguments = ["bulk", prompts, "-W", "128", "-H", "128", "--prior-steps", "2", "--decoder-steps", "2", "--seed", "10", "-o", output, .. CliProcess.FixtureModels(), .. Store()];

        var first = await CliProcess.RunAsync(arguments, cancellationToken: Token);
        Assert.Equal(1, first.ExitCode);
        Assert.Contains("3 succeeded, 0 failed, 1 rejected of 4", first.Output);
        // The rejected line is on standard error, in a JSON writer's terms, not .NET's.
        string rejected = Assert.Single(first.Error.Trim().Split('\n'));
        Assert.StartsWith("error: rejected: line 3: not JSON (", rejected);
        foreach (string internals in new[] { "LineNumber", "BytePositionInLine", "BulkJobParser", "PromptLine", "Wuerstchen." })
            Assert.DoesNotContain(internals, first.Error + File.ReadAllText(Path.Combine(output, "manifest.jsonl")));
        var manifest = File.ReadAllLines(Path.Combine(output, "manifest.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(["succeeded", "succeeded", "rejected", "succeeded"], manifest.Select(e => e.GetProperty("status").GetString()));
        foreach (var entry in manifest.Where(e => e.GetProperty("status").GetString() == "succeeded"))
            Assert.True(File.Exists(Path.Combine(output, entry.GetProperty("images")[0].GetString()!)));
        byte[] before = await File.ReadAllBytesAsync(Path.Combine(output, manifest[0].GetProperty("images")[0].GetString()!), Token);

        var again = await CliProcess.RunAsync(arguments, cancellationToken: Token);
        Assert.Equal(1, again.ExitCode);
        Assert.Equal(before, await File.ReadAllBytesAsync(Path.Combine(output, manifest[0].GetProperty("images")[0].GetString()!), Token));
    }

    [Fact]
    public async Task CtrlCStopsTheRunningStageWithinAStepWritesNothingAndExitsWith130()
    {
        using var process = CliProcess.Start(["generate", "a long one", "-W", "2048", "-H", "2048", "--prior-steps", "200", "--decoder-steps", "100",
            .. CliProcess.FixtureModels(), .. Store()], new Dictionary<string, string?> { ["Wuerstchen__Workflows__ProgressInterval"] = "00:00:00" });
        var output = new StringBuilder();
        var stepping = new TaskCompletionSource();
        process.OutputDataReceived += (_, e) =>
        {
            lock (output)
                output.AppendLine(e.Data);
            var step = System.Text.RegularExpressions.Regex.Match(e.Data ?? "", @"Stage C \(prior\): step (\d+)/");
            if (step.Success && int.Parse(step.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 2)
                stepping.TrySetResult();
        };
        process.BeginOutputReadLine();
        var error = process.StandardError.ReadToEndAsync(Token);
        await stepping.Task.WaitAsync(TimeSpan.FromMinutes(2), Token);

        // With progress on every step, the progress blob says which step Stage C is at.
        string progress = Path.Combine(Directory.GetDirectories(Path.Combine(_temp.File("store"), "generations")).Single(), "progress.json");
        int atSignal = StepOf(progress);
        var stopping = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            await kill.WaitForExitAsync(Token);
        await process.WaitForExitAsync(Token).WaitAsync(TimeSpan.FromMinutes(1), Token);

        Assert.Equal(130, process.ExitCode);
        string stderr = await error;
        Assert.Contains("Stopping… (press Ctrl+C again to force an exit)", stderr);
        Assert.Contains("Cancelled", stderr);
        int last = StepOf(progress);
        TestContext.Current.TestOutputHelper?.WriteLine($"Stage C was at step {atSignal} of 200 at Ctrl+C and stopped after step {last}; the command exited {stopping.Elapsed.TotalSeconds:F1} s after Ctrl+C.");
        Assert.True(last <= atSignal + 3, $"Stage C went on from step {atSignal} to step {last} after Ctrl+C");
        Assert.False(Directory.Exists(Path.Combine(_temp.File("store"), "latents")) && Directory.EnumerateFiles(Path.Combine(_temp.File("store"), "latents"), "*", SearchOption.AllDirectories).Any(),
            "a stopped stage left latents behind");

        static int StepOf(string path) => JsonDocument.Parse(File.ReadAllText(path)).RootElement.GetProperty("Step").GetInt32();
    }

    [Fact]
    public async Task ASettingFromTheEnvironmentThatCannotWorkStopsTheCommandBeforeAnyWork()
    {
        var result = await CliProcess.RunAsync(["generate", "x", "-W", "128", "-H", "128", "--prior-steps", "2", "--decoder-steps", "2", "-o", _temp.File("out"),
            .. CliProcess.FixtureModels(), .. Store()], new Dictionary<string, string?> { ["Wuerstchen__Workflows__Retry__FirstInterval"] = "00:00:00" }, Token);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("error: Wuerstchen:Workflows:Retry:FirstInterval is 00:00:00", result.Error);
        Assert.False(Directory.Exists(_temp.File("out")));
    }

    [Fact]
    public async Task ModelsListAndInspectDescribeTheFixtureModels()
    {
        var list = await CliProcess.RunAsync(["models", "list", "--models", ParityFixtures.PathOf("models")], cancellationToken: Token);
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("prior-pipeline\tWuerstchenPriorPipeline", list.Output);
        Assert.Contains("decoder-pipeline\tWuerstchenDecoderPipeline", list.Output);

        var inspect = await CliProcess.RunAsync(["models", "inspect", "prior-pipeline", "--models", ParityFixtures.PathOf("models"), "--json"], cancellationToken: Token);
        Assert.Equal(0, inspect.ExitCode);
        var report = JsonDocument.Parse(inspect.Output).RootElement;
        var prior = report.GetProperty("components").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "prior");
        using var weights = SafetensorsFile.Open(ParityFixtures.PathOf("models/prior-pipeline/prior/diffusion_pytorch_model.safetensors"));
        Assert.Equal(weights.Tensors.Count, prior.GetProperty("tensorCount").GetInt32());
        Assert.Equal(weights.Tensors.Values.Sum(t => t.ElementCount), prior.GetProperty("parameterCount").GetInt64());
        Assert.Equal(64, prior.GetProperty("weightFiles")[0].GetProperty("sha256").GetString()!.Length);

        var unknown = await CliProcess.RunAsync(["models", "inspect", "nobody/nothing", "--models", ParityFixtures.PathOf("models")], cancellationToken: Token);
        Assert.Equal(3, unknown.ExitCode);
    }

    [Fact]
    public async Task ModelsDownloadFetchesAHubRepositoryAndThenWorksOffline()
    {
        using var hub = new FakeHubServer();
        var tree = HubFixtures.Tree(ParityFixtures.PathOf("models/prior-pipeline"));
        hub.AddRepo("warp-ai/wuerstchen-prior", HubFixtures.CommitOf("prior"), tree, "main");
        string root = _temp.File("root");

        var download = await CliProcess.RunAsync(["models", "download", "warp-ai/wuerstchen-prior", "--models", root],
            new Dictionary<string, string?> { ["HF_ENDPOINT"] = hub.Endpoint.ToString() }, Token);
        Assert.True(download.ExitCode == 0, download.ToString());
        Assert.Contains("prior/diffusion_pytorch_model.safetensors", download.Error); // progress goes to standard error

        var offline = await CliProcess.RunAsync(["models", "download", "warp-ai/wuerstchen-prior", "--models", root, "--offline"], cancellationToken: Token);
        Assert.Equal(0, offline.ExitCode);
        Assert.Contains("from the cache", offline.Output);
        var list = await CliProcess.RunAsync(["models", "list", "--models", root], cancellationToken: Token);
        Assert.Contains("warp-ai/wuerstchen-prior\tWuerstchenPriorPipeline", list.Output);
    }

    [Fact]
    public async Task ModelsConvertTurnsAPickledCheckpointIntoSafetensors()
    {
        string checkpoint = _temp.File("model_v2_stage_b.pt");
        using var weight = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var bias = torch.ones(2);
        TorchSaveWriter.Save(checkpoint, new Dictionary<string, object?>
        {
            ["effnet_state_dict"] = new TorchSaveWriter.StateDict(new Dictionary<string, torch.Tensor> { ["mapper.0.weight"] = weight, ["mapper.1.bias"] = bias }),
            ["state_dict"] = new TorchSaveWriter.StateDict(new Dictionary<string, torch.Tensor> { ["other"] = bias }),
        });
        string output = _temp.File("effnet.safetensors");

        var result = await CliProcess.RunAsync(["models", "convert", checkpoint, output, "--key", "effnet_state_dict", "--dtype", "float16"], cancellationToken: Token);
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("2 tensors", result.Output);
        using var converted = SafetensorsFile.Open(output);
        Assert.Equal(["mapper.0.weight", "mapper.1.bias"], converted.Tensors.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("F16", converted.Tensors["mapper.0.weight"].DType);

        var missing = await CliProcess.RunAsync(["models", "convert", checkpoint, output, "--key", "ema_state_dict"], cancellationToken: Token);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("effnet_state_dict", missing.Error);
    }

    [Fact]
    public async Task UnknownCommandsAndOptionsAreUsageErrors()
    {
        var result = await CliProcess.RunAsync(["paint", "x"], cancellationToken: Token);
        Assert.Equal(2, result.ExitCode);
        Assert.StartsWith("error:", result.Error);
        var option = await CliProcess.RunAsync(["generate", "x", "--device", "tpu"], cancellationToken: Token);
        Assert.Equal(2, option.ExitCode);
        Assert.Contains("--device", option.Error);
    }
}
