using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>Small captioned datasets written straight into the app's store, and fine-tune requests the CPU runs in seconds.</summary>
public static class FineTunes
{
    public const string BaselinePrefix = "datasets/stripes/";
    public const string BaselineRunId = "baseline";
    public const int TotalSteps = 24;

    private static readonly (string Name, Rgb24 Colour)[] Colours =
        [("red", new(200, 40, 40)), ("blue", new(40, 70, 200)), ("green", new(40, 160, 70)), ("orange", new(230, 140, 20))];

    /// <summary>Eight 32×32 PNGs (a colour in horizontal or vertical stripes) beside their captions, as name.png + name.txt pairs.</summary>
    public static async Task WriteDatasetAsync(HostFixture host, string prefix, Func<string, string>? caption = null)
    {
        foreach (var (name, colour) in Colours)
        {
            foreach (bool vertical in new[] { false, true })
            {
                string stem = $"{name}-{(vertical ? "vertical" : "horizontal")}";
                string text = $"{name} {(vertical ? "vertical" : "horizontal")} stripes on white";
                await host.WriteAsync($"{prefix}{stem}.png", Stripes(colour, vertical));
                await host.WriteAsync($"{prefix}{stem}.txt", Encoding.UTF8.GetBytes(caption?.Invoke(stem) ?? text));
            }
        }
    }

    private static byte[] Stripes(Rgb24 colour, bool vertical)
    {
        using var image = new Image<Rgb24>(32, 32, new Rgb24(255, 255, 255));
        for (int y = 0; y < 32; y++)
        {
            for (int x = 0; x < 32; x++)
            {
                if (((vertical ? x : y) / 4) % 2 == 0)
                    image[x, y] = colour;
            }
        }
        using var output = new MemoryStream();
        image.SaveAsPng(output);
        return output.ToArray();
    }

    /// <summary>
    /// The blog recipe with every random path in use (caption dropout, the prior's dropout, accumulation, warm-up, EMA),
    /// small enough for the CPU: 128-pixel effnet input, a 128² validation image. Only <paramref name="stepsPerChunk"/>
    /// and <paramref name="runId"/> differ between the runs the kill-and-restart test compares.
    /// </summary>
    public static object Request(string runId, int stepsPerChunk, string prefix = BaselinePrefix, int totalSteps = TotalSteps) => new
    {
        dataset = new { prefix },
        recipe = "blog",
        runId,
        totalSteps,
        stepsPerChunk,
        batchSize = 3,
        gradientAccumulation = 2,
        warmupSteps = 3,
        emaUpdateEvery = 2,
        captionDropout = 0.5,
        resolution = 128,
        learningRate = 1e-3,
        seed = 23,
        validationPrompts = new[] { "green vertical stripes on white" },
        validationSeeds = new[] { 1 },
        validationSize = 128,
        validationPriorSteps = 2,
        validationDecoderSteps = 2,
    };

    /// <summary>The uninterrupted run: all <see cref="TotalSteps"/> steps in one chunk, started over HTTP and followed to its end.</summary>
    public static async Task<JsonNode> RunBaselineAsync(HostFixture host)
    {
        await WriteDatasetAsync(host, BaselinePrefix);
        var started = await host.JsonAsync(HttpMethod.Post, "finetunes", "StartFineTune", Request(BaselineRunId, stepsPerChunk: TotalSteps), HttpStatusCode.Accepted);
        string id = started.Text("id");
        return await host.PollAsync($"finetunes/{id}", "GetFineTune", HostFixture.Ended, TimeSpan.FromMinutes(5));
    }
}
