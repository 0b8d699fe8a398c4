using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Functions.Tests;

/// <summary>A tiny synthetic captioned dataset: coloured shapes on white, 32×32 PNGs with one-line captions.</summary>
public static class ShapesDataset
{
    private static readonly (string Name, Rgb24 Colour)[] Colours =
    [
        ("red", new Rgb24(220, 30, 30)),
        ("blue", new Rgb24(30, 60, 220)),
        ("green", new Rgb24(30, 170, 60)),
        ("yellow", new Rgb24(240, 210, 20)),
    ];

    private static readonly string[] Shapes = ["circle", "square"];

    /// <summary>(file stem, caption, PNG bytes) for each colour × shape.</summary>
    public static IReadOnlyList<(string Stem, string Caption, byte[] Png)> Items(int size = 32) =>
        Colours.SelectMany(c => Shapes.Select(s => ($"{c.Name}-{s}", $"a {c.Name} {s} on a white background", Png(c.Colour, s, size)))).ToArray();

    public static byte[] Png(Rgb24 colour, string shape, int size = 32)
    {
        using var image = new Image<Rgb24>(size, size, new Rgb24(255, 255, 255));
        double centre = (size - 1) / 2.0, radius = size * 0.3;
        for (int y = 0; y < size; y++)
        {
            for (int x = 0; x < size; x++)
            {
                bool inside = shape == "circle"
                    ? (x - centre) * (x - centre) + (y - centre) * (y - centre) <= radius * radius
                    : Math.Abs(x - centre) <= radius && Math.Abs(y - centre) <= radius;
                if (inside)
                    image[x, y] = colour;
            }
        }
        using var output = new MemoryStream();
        image.SaveAsPng(output);
        return output.ToArray();
    }

    /// <summary>Writes the items as <c>name.png</c> + <c>name.txt</c> pairs under <paramref name="prefix"/>.</summary>
    public static async Task WritePairsAsync(IBlobStore store, string prefix, CancellationToken cancellationToken)
    {
        foreach (var (stem, caption, png) in Items())
        {
            await store.WriteAsync($"{prefix}{stem}.png", new MemoryStream(png), new BlobWriteOptions { ContentType = "image/png" }, cancellationToken);
            await store.WriteAsync($"{prefix}{stem}.txt", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(caption)), cancellationToken: cancellationToken);
        }
    }
}
