using System.Text.Json;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Tests.Hub;

namespace Wuerstchen.Cli.Tests;

/// <summary><c>models download</c> and the automatic downloads against a local fake Hub: progress, revisions, and what recipes record.</summary>
public sealed class DownloadCliTests : IDisposable
{
    private const string PriorFile = "prior/diffusion_pytorch_model.safetensors";

    private static readonly string MainCommit = HubFixtures.CommitOf("prior main");
    private static readonly string TaggedCommit = HubFixtures.CommitOf("prior v1.0");

    private readonly TempDirectory _temp = new();
    private readonly FakeHubServer _hub = new();

    public void Dispose()
    {
        _hub.Dispose();
        _temp.Dispose();
    }

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private Dictionary<string, string?> HubEnvironment() => new() { ["HF_ENDPOINT"] = _hub.Endpoint.ToString() };

    /// <summary>The prior at main, and at tag v1.0 a commit whose model index differs by a byte.</summary>
    private Dictionary<string, byte[]> ServePriorWithTag()
    {
        var main = HubFixtures.Tree(ParityFixtures.PathOf("models/prior-pipeline"));
        _hub.AddRepo(HubFixtures.PriorRepo, MainCommit, main, "main");
        var tagged = new Dictionary<string, byte[]>(main) { ["model_index.json"] = [.. main["model_index.json"], (byte)'\n'] };
        _hub.AddRepo(HubFixtures.PriorRepo, TaggedCommit, tagged, "v1.0");
        return tagged;
    }

    [Fact]
    public async Task ModelsDownloadOfARevisionShowsPlainProgressResumesAndIsListedAndInspectedByRevision()
    {
        var tree = ServePriorWithTag();
        _hub.DropConnectionOnce(PriorFile);
        string root = _temp.File("root");

        var download = await CliProcess.RunAsync(["models", "download", HubFixtures.PriorRepo, "--revision", "v1.0", "--models", root], HubEnvironment(), Token);

        Assert.True(download.ExitCode == 0, download.ToString());
        // The revision is listed by name; every file comes from the commit it names.
        Assert.Contains(_hub.Requests, r => r.Path == $"/api/models/{HubFixtures.PriorRepo}/revision/v1.0");
        Assert.All(_hub.Requests.Where(r => r.Path.Contains("/resolve/", StringComparison.Ordinal)),
            r => Assert.StartsWith($"/{HubFixtures.PriorRepo}/resolve/{TaggedCommit}/", r.Path));
        // The interrupted file was resumed with a range request.
        Assert.Contains(_hub.Downloads, r => r.FilePath == PriorFile && r.Range == $"bytes={_hub.DropAfterBytes}-");

        // Standard output: the result. Standard error: progress as plain lines, no carriage returns or escape codes.
        Assert.Contains($"{HubFixtures.PriorRepo}@v1.0: ", download.Output);
        Assert.Contains($"files of commit {TaggedCommit}", download.Output);
        Assert.DoesNotContain("downloading", download.Output);
        string[] progress = download.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.DoesNotContain(progress, l => l.Contains('\r') || l.Contains('\u001b'));
        Assert.Contains($"Fetching {HubFixtures.PriorRepo} at revision v1.0", download.Error);
        string size = DownloadProgressLines.Size(tree[PriorFile].Length);
        Assert.Contains($"  {PriorFile}: downloading {size}", progress);
        Assert.Contains($"  {PriorFile}: interrupted, resuming after {DownloadProgressLines.Size(_hub.DropAfterBytes)}", progress);
        Assert.Contains(progress, l => l.StartsWith($"  {PriorFile}: {size} done in ", StringComparison.Ordinal) && l.EndsWith("/s", StringComparison.Ordinal));
        Assert.Contains(progress, l => l.StartsWith("Downloaded ", StringComparison.Ordinal) && l.Contains(" files in ", StringComparison.Ordinal));
        Assert.Contains(progress, l => l.StartsWith("  model_index.json: ", StringComparison.Ordinal) && l.Contains(" done", StringComparison.Ordinal));

        // The name `models list` shows downloads the same revision again: now from the cache, listed by that revision.
        var again = await CliProcess.RunAsync(["models", "download", $"{HubFixtures.PriorRepo}@v1.0", "--models", root], HubEnvironment(), Token);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains($"{HubFixtures.PriorRepo}@v1.0: ", again.Output);
        Assert.Equal(2, _hub.Requests.Count(r => r.Path == $"/api/models/{HubFixtures.PriorRepo}/revision/v1.0"));
        Assert.DoesNotContain("Downloaded ", again.Error);

        var list = await CliProcess.RunAsync(["models", "list", "--models", root], cancellationToken: Token);
        Assert.Contains($"{HubFixtures.PriorRepo}@v1.0\tWuerstchenPriorPipeline\t", list.Output);
        Assert.Contains(TaggedCommit, list.Output);
        Assert.DoesNotContain($"{HubFixtures.PriorRepo}\t", list.Output); // main was never downloaded

        var inspect = await CliProcess.RunAsync(["models", "inspect", $"{HubFixtures.PriorRepo}@v1.0", "--models", root, "--no-checksums"], cancellationToken: Token);
        Assert.True(inspect.ExitCode == 0, inspect.ToString());
        Assert.Contains($"{HubFixtures.PriorRepo} at revision v1.0, commit {TaggedCommit}", inspect.Output);
        var json = await CliProcess.RunAsync(["models", "inspect", $"{HubFixtures.PriorRepo}@v1.0", "--models", root, "--no-checksums", "--json"], cancellationToken: Token);
        var hub = JsonDocument.Parse(json.Output).RootElement.GetProperty("hub");
        Assert.Equal(("v1.0", TaggedCommit), (hub.GetProperty("revision").GetString(), hub.GetProperty("commit").GetString()));
    }

    [Fact]
    public async Task GenerateDownloadsTheModelsAtTheRevisionAndRecordsItInTheRecipeOfEveryImage()
    {
        ServePriorWithTag();
        var decoder = HubFixtures.Tree(ParityFixtures.PathOf("models/decoder-pipeline"));
        _hub.AddRepo(HubFixtures.DecoderRepo, HubFixtures.CommitOf("decoder v1.0"), decoder, "main", "v1.0");
        string root = _temp.File("root");
        string output = _temp.File("out");

        var result = await CliProcess.RunAsync(["generate", "a red pokemon with wings", "-W", "128", "-H", "128", "-i", "2", "--seed", "7",
            "--prior-steps", "2", "--decoder-steps", "1", "-o", output, "--models", root, "--revision", "v1.0", "--store", _temp.File("store")],
            HubEnvironment(), Token);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains(_hub.Requests, r => r.Path == $"/api/models/{HubFixtures.PriorRepo}/revision/v1.0");
        Assert.Contains(_hub.Requests, r => r.Path == $"/api/models/{HubFixtures.DecoderRepo}/revision/v1.0");
        Assert.DoesNotContain(_hub.Requests, r => r.Path.EndsWith("/revision/main", StringComparison.Ordinal));
        Assert.Contains(_hub.Requests, r => r.Path.StartsWith($"/{HubFixtures.PriorRepo}/resolve/{TaggedCommit}/", StringComparison.Ordinal));
        string[] images = Directory.GetFiles(output, "*.png");
        Assert.Equal(2, images.Length);
        foreach (string image in images)
        {
            using var png = File.OpenRead(image);
            var recipe = PngImages.ReadRecipe(png)!;
            Assert.Equal(($"{HubFixtures.PriorRepo}@v1.0", $"{HubFixtures.DecoderRepo}@v1.0"), (recipe.PriorModel, recipe.DecoderModel));
        }

        // Offline, the pinned names answer from the cache; the plain names do not (main was never downloaded).
        int requests = _hub.Requests.Count;
        var again = await CliProcess.RunAsync(["generate", "again", "-W", "128", "-H", "128", "--prior-steps", "1", "--decoder-steps", "1", "-o", output,
            "--models", root, "--prior-model", $"{HubFixtures.PriorRepo}@v1.0", "--decoder-model", $"{HubFixtures.DecoderRepo}@v1.0", "--offline",
            "--store", _temp.File("store")], cancellationToken: Token);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(requests, _hub.Requests.Count);
        var plain = await CliProcess.RunAsync(["generate", "again", "--models", root, "--offline", "--store", _temp.File("store")], cancellationToken: Token);
        Assert.Equal(3, plain.ExitCode);
    }

    [Theory]
    [InlineData("../../etc")]
    [InlineData("v 1")]
    [InlineData("feature//x")]
    public async Task ABadRevisionIsRefusedInTheOptionsTermsBeforeAnyRequest(string revision)
    {
        ServePriorWithTag();
        string root = _temp.File("root");

        var download = await CliProcess.RunAsync(["models", "download", HubFixtures.PriorRepo, "--revision", revision, "--models", root], HubEnvironment(), Token);
        var generate = await CliProcess.RunAsync(["generate", "x", "--revision", revision, "--models", root, "--store", _temp.File("store")], HubEnvironment(), Token);
        var pinned = await CliProcess.RunAsync(["generate", "x", "--prior-model", $"{HubFixtures.PriorRepo}@{revision}", "--models", root, "--store", _temp.File("store")],
            HubEnvironment(), Token);

        var downloadPinned = await CliProcess.RunAsync(["models", "download", $"{HubFixtures.PriorRepo}@{revision}", "--models", root], HubEnvironment(), Token);

        Assert.Equal(2, download.ExitCode);
        Assert.Contains($"--revision '{revision}' is not a revision; give a branch, tag or commit", download.Error);
        Assert.Equal(2, downloadPinned.ExitCode);
        Assert.Contains($"REPO '{HubFixtures.PriorRepo}@{revision}': '{revision}' is not a revision", downloadPinned.Error);
        Assert.Equal(2, generate.ExitCode);
        Assert.Contains($"--revision '{revision}' is not a revision", generate.Error);
        Assert.Equal(2, pinned.ExitCode);
        Assert.Contains($"--prior-model '{HubFixtures.PriorRepo}@{revision}': '{revision}' is not a revision", pinned.Error);
        Assert.Empty(_hub.Requests);
        Assert.False(Directory.Exists(Path.Combine(root, "hub")));
    }

    [Fact]
    public async Task ARevisionWithNoHubModelToApplyToIsRefused()
    {
        var result = await CliProcess.RunAsync(["generate", "x", "--revision", "v1.0", .. CliProcess.FixtureModels(), "--store", _temp.File("store")], cancellationToken: Token);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--revision applies to Hub models (owner/name)", result.Error);

        var both = await CliProcess.RunAsync(["generate", "x", "--revision", "v1.0", "--prior-model", $"{HubFixtures.PriorRepo}@v2", "--store", _temp.File("store")],
            cancellationToken: Token);
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("names its revision already", both.Error);
    }
}
