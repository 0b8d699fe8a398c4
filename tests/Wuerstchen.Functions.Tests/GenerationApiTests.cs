using Microsoft.AspNetCore.Mvc;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Functions.Generation;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Tests;
using Wuerstchen.Workflows.Generation;
using static TorchSharp.torch;

namespace Wuerstchen.Functions.Tests;

public sealed class GenerationApiTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>Every fixture pipeline case with a single prompt and a decoder, as an HTTP request body.</summary>
    public static TheoryData<string> Cases()
    {
        var cases = new TheoryData<string>();
        foreach (string file in Directory.EnumerateFiles(ParityFixtures.PathOf("cases"), "pipeline_*.safetensors").Order(StringComparer.Ordinal))
        {
            using var fixture = SafetensorsFile.Open(file);
            using var recipe = System.Text.Json.JsonDocument.Parse(fixture.Metadata["case"]);
            if (recipe.RootElement.TryGetProperty("decoder_steps", out _) && recipe.RootElement.GetProperty("prompt").ValueKind == System.Text.Json.JsonValueKind.String)
                cases.Add(Path.GetFileNameWithoutExtension(file));
        }
        return cases;
    }

    private static (string Body, SafetensorsFile Fixture) RequestFor(string caseName)
    {
        var fixture = SafetensorsFile.Open(ParityFixtures.PathOf($"cases/{caseName}.safetensors"));
        using var document = System.Text.Json.JsonDocument.Parse(fixture.Metadata["case"]);
        var r = document.RootElement;
        string? negative = r.GetProperty("negative_prompt").ValueKind == System.Text.Json.JsonValueKind.Null ? null : r.GetProperty("negative_prompt").GetString();
        bool explicitSchedule = r.TryGetProperty("prior_timesteps", out var schedule) && schedule.ValueKind == System.Text.Json.JsonValueKind.Array;
        string body = HttpRequests.Json(new
        {
            prompt = r.GetProperty("prompt").GetString(),
            negativePrompt = negative,
            width = r.GetProperty("width").GetInt32(),
            height = r.GetProperty("height").GetInt32(),
            images = r.GetProperty("n").GetInt32(),
            seed = r.GetProperty("seed").GetInt64(),
            priorTimesteps = explicitSchedule ? schedule.EnumerateArray().Select(t => t.GetDouble()).ToArray() : null,
            priorSteps = explicitSchedule ? (int?)null : r.GetProperty("prior_steps").GetInt32(),
            priorGuidance = r.GetProperty("prior_guidance").GetDouble(),
            decoderSteps = r.GetProperty("decoder_steps").GetInt32(),
            decoderGuidance = r.GetProperty("decoder_guidance").GetDouble(),
        });
        return (body, fixture);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AnHttpRequestProducesThePngsOfTheReferencePipeline(string caseName)
    {
        await using var environment = await TestEnvironment.StartAsync();
        var (body, fixture) = RequestFor(caseName);
        using var _ = fixture;

        var started = await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body, query: "?wait=60"), environment.Client, Token);
        var ok = Assert.IsType<OkObjectResult>(started);
        var status = Assert.IsType<GenerationStatusResponse>(ok.Value);
        Assert.True(status.Status == "Completed", $"the generation ended {status.Status}: {status.Error}");

        using var expected = fixture.Load("images_uint8");
        Assert.Equal(expected.shape[0], status.Images.Count);
        for (int n = 0; n < status.Images.Count; n++)
        {
            var image = Assert.IsType<FileStreamResult>(await environment.Http.GetImage(HttpRequests.Make("GET", $"/api/generations/{status.Id}/images/{n}"), environment.Client, status.Id, n, Token));
            using var png = new MemoryStream();
            await image.FileStream.CopyToAsync(png, Token);
            AssertSameImage(png.ToArray(), expected[n], $"{caseName} image {n}");

            var recipe = PngImages.ReadRecipe(new MemoryStream(png.ToArray()));
            Assert.NotNull(recipe);
            Assert.Equal(status.Recipe!.Items[0].Seed, recipe.Seed);
            Assert.Equal(n, recipe.ImageIndex);
        }
    }

    /// <summary>Pixel for pixel within one 8-bit level, for all but a tiny share (random weights amplify float rounding).</summary>
    internal static void AssertSameImage(byte[] png, Tensor expected, string what)
    {
        using var decoded = Image.Load<Rgb24>(png);
        Assert.Equal((int)expected.shape[0], decoded.Height);
        Assert.Equal((int)expected.shape[1], decoded.Width);
        var reference = expected.data<byte>().ToArray();
        int far = 0;
        for (int y = 0; y < decoded.Height; y++)
            for (int x = 0; x < decoded.Width; x++)
            {
                var p = decoded[x, y];
                int at = (y * decoded.Width + x) * 3;
                far += (Math.Abs(p.R - reference[at]) > 1 ? 1 : 0) + (Math.Abs(p.G - reference[at + 1]) > 1 ? 1 : 0) + (Math.Abs(p.B - reference[at + 2]) > 1 ? 1 : 0);
            }
        Assert.True(far <= reference.Length / 1000, $"{what}: {far} of {reference.Length} values differ from the reference by more than one level");
    }
}
