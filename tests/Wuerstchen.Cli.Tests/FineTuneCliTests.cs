using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Cli.Tests;

public sealed class FineTuneCliTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Coloured squares with captions as name.png + name.txt pairs, and one image without a caption.</summary>
    private string WriteDataset()
    {
        string folder = _temp.File("shapes");
        Directory.CreateDirectory(folder);
        var colours = new (string Name, Rgb24 Colour)[] { ("red", new(220, 30, 30)), ("blue", new(30, 60, 220)), ("green", new(30, 170, 60)), ("yellow", new(240, 210, 20)) };
        foreach (var (name, colour) in colours)
        {
            using var image = new Image<Rgb24>(32, 32, new Rgb24(255, 255, 255));
            for (int y = 8; y < 24; y++)
            for (int x = 8; x < 24; x++)
                image[x, y] = colour;
            image.SaveAsPng(Path.Combine(folder, $"{name}.png"));
            File.WriteAllText(Path.Combine(folder, $"{name}.txt"), $"a {name} square");
        }
        File.Copy(Path.Combine(folder, "red.png"), Path.Combine(folder, "uncaptioned.png"));
        return folder;
    }

    [Fact]
    public async Task FinetunePublishesAVersionThatGenerateCanUseAndResumes()
    {
        string dataset = WriteDataset();
        string store = _temp.File("store"), output = _temp.File("out");
        string[] arguments =
        [
            "finetune", dataset, "--recipe", "diffusers", "--steps", "4", "--steps-per-chunk", "2", "--batch-size", "2", "--resolution", "128",
            "--validation-prompt", "a red square", "--validation-size", "128", "--validation-prior-steps", "2", "--validation-decoder-steps", "2",
            "--effnet", ParityFixtures.PathOf("models/effnet"), "-o", output, "--store", store, .. CliProcess.FixtureModels(),
        ];

        var result = await CliProcess.RunAsync(arguments, cancellationToken: Token);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("step 4/4", result.Output);
        Assert.Contains("skipped uncaptioned.png", result.Output);
        Assert.True(File.Exists(Directory.GetFiles(output, "*-grid.png").Single()));
        string version = result.Output.Split("Published ")[1].Split(' ')[0];
        Assert.StartsWith("finetuned/", version);

        var generated = await CliProcess.RunAsync(["generate", "a red square", "-W", "128", "-H", "128", "--prior-steps", "2", "--decoder-steps", "2",
            "--models", ParityFixtures.PathOf("models"), "--decoder-model", "decoder-pipeline", "--prior-model", version, "--store", store, "-o", _temp.File("gen")], cancellationToken: Token);
        Assert.True(generated.ExitCode == 0, generated.ToString());

        // The same command again finds the run finished and publishes nothing new.
        var again = await CliProcess.RunAsync(arguments, cancellationToken: Token);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains($"Published {version} ", again.Output);
    }

    [Fact]
    public async Task AMissingDatasetFolderIsAUsageError()
    {
        var result = await CliProcess.RunAsync(["finetune", _temp.File("nowhere"), .. CliProcess.FixtureModels()], cancellationToken: Token);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("does not exist", result.Error);
    }
}
