using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>What a client can check of a PNG it was given: that it is one, its size, and its text chunks.</summary>
public static class Png
{
    public static (int Width, int Height, IReadOnlyDictionary<string, string> Text) Read(byte[] bytes)
    {
        Assert.True(bytes.Length > 8 && bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }),
            $"not a PNG ({bytes.Length} bytes)");
        using var image = Image.Load(bytes);
        var text = image.Metadata.GetPngMetadata().TextData.GroupBy(t => t.Keyword).ToDictionary(g => g.Key, g => g.First().Value);
        return (image.Width, image.Height, text);
    }
}
