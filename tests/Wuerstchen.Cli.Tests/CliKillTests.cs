using System.Text;
using System.Text.Json;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Cli.Tests;

/// <summary>A bulk run killed with SIGKILL in the middle of a stage, and run again: nothing lost, nothing twice, nothing half-written.</summary>
public sealed class CliKillTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ABulkRunKilledMidStageAndRunAgainEndsWithEveryImageExactlyOnce()
    {
        const int prompts = 8;
        string file = _temp.File("prompts.txt");
        await File.WriteAllLinesAsync(file, Enumerable.Range(0, prompts).Select(i => $"a lantern number {i}"), Token);
        string store = _temp.File("store"), output = _temp.File("out");
        string[] arguments = ["bulk", file, "-W", "128", "-H", "128", "--prior-steps", "40", "--decoder-steps", "8", "--seed", "3", "--batch-size", "2",
            "-o", output, .. CliProcess.FixtureModels(), "--store", store];

        // Killed once the first batch's Stage B latents exist: a later batch's stage is running (or about to).
        using (var process = CliProcess.Start(arguments))
        {
            var drain = Task.WhenAll(process.StandardOutput.ReadToEndAsync(Token), process.StandardError.ReadToEndAsync(Token));
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(Token);
            wait.CancelAfter(TimeSpan.FromMinutes(3));
            while (!Directory.Exists(Path.Combine(store, "latents", "stage-b")) || Directory.GetFiles(Path.Combine(store, "latents", "stage-b")).Length == 0)
            {
                Assert.False(process.HasExited, "the run ended before it could be killed");
                await Task.Delay(20, wait.Token);
            }
            process.Kill(); // SIGKILL: no handler, no cleanup
            await process.WaitForExitAsync(Token);
            await drain;
            Assert.NotEqual(0, process.ExitCode);
        }
        Assert.False(File.Exists(Path.Combine(output, "manifest.jsonl")), "a killed run left a manifest that reads as complete");
        int imagesBeforeRerun = Directory.Exists(Path.Combine(store, "images")) ? Directory.GetFiles(Path.Combine(store, "images"), "*.png", SearchOption.AllDirectories).Length : 0;

        var again = await CliProcess.RunAsync(arguments, cancellationToken: Token);

        Assert.True(again.ExitCode == 0, again.ToString());
        var manifest = File.ReadAllLines(Path.Combine(output, "manifest.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(Enumerable.Range(0, prompts), manifest.Select(e => e.GetProperty("index").GetInt32()));
        Assert.All(manifest, e => Assert.Equal("succeeded", e.GetProperty("status").GetString()));
        var files = manifest.SelectMany(e => e.GetProperty("images").EnumerateArray().Select(i => i.GetString()!)).ToArray();
        Assert.Equal(prompts, files.Distinct().Count());
        Assert.All(files, f => Assert.True(File.Exists(Path.Combine(output, f)), f));
        Assert.Equal(prompts, Directory.GetFiles(output, "*.png").Length);
        // The store: one PNG per prompt (content-addressed, so the rerun rewrote or reused, never added), and every
        // latents file whole. Temp files of the killed writes are the store's own (.wuerstchen-tmp-*), never listed.
        var storedImages = Directory.GetFiles(Path.Combine(store, "images"), "*.png", SearchOption.AllDirectories);
        Assert.Equal(prompts, storedImages.Length);
        foreach (string latents in Directory.GetFiles(Path.Combine(store, "latents"), "*.safetensors", SearchOption.AllDirectories))
        {
            using var opened = SafetensorsFile.Open(latents);
            Assert.NotEmpty(opened.Tensors);
        }
        ReliabilityLog.Record($"fault injection, CLI bulk SIGKILLed mid-stage and rerun: {prompts} prompts, 1 kill ({imagesBeforeRerun} images stored before it), rerun exit 0 with {files.Length} images, items lost = {prompts - files.Length}");
    }
}
