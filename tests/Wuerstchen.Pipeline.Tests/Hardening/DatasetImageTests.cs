using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Tiff;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Pipeline.Tests.Hardening;

/// <summary>Decompression bombs and formats nobody documented, in dataset images.</summary>
public sealed class DatasetImageTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    /// <summary>
    /// A GIF of <paramref name="frames"/> frames on a <paramref name="width"/>×<paramref name="height"/> canvas, each frame
    /// one pixel of LZW data: a few hundred bytes that a decoder of every frame expands to frames × width × height pixels.
    /// </summary>
    public static byte[] GifBomb(int width, int height, int frames)
    {
        var gif = new List<byte>();
        gif.AddRange("GIF89a"u8.ToArray());
        gif.AddRange(BitConverter.GetBytes((ushort)width));
        gif.AddRange(BitConverter.GetBytes((ushort)height));
        gif.AddRange([0x80, 0, 0]);             // a global colour table of 2 entries
        gif.AddRange([0, 0, 0, 255, 255, 255]);
        for (int i = 0; i < frames; i++)
        {
            gif.AddRange([0x21, 0xF9, 4, 0, 10, 0, 0, 0]);   // graphic control: 0.1 s
            gif.Add(0x2C);                                    // image descriptor: 1×1 at (0, 0)
            gif.AddRange([0, 0, 0, 0, 1, 0, 1, 0, 0]);
            gif.AddRange([2, 2, 0x44, 0x01, 0]);              // LZW: clear, index 0, end
        }
        gif.Add(0x3B);
        return gif.ToArray();
    }

    [Fact]
    public void A572ByteGifOfTwentyFourFramesDecodesToOneFrameWithinTheBudget()
    {
        byte[] bomb = GifBomb(4000, 2500, 24);
        Assert.Equal(572, bomb.Length);
        var (format, info) = DatasetImages.Identify(bomb);
        Assert.Equal("GIF", format!.Name);
        Assert.Equal((4000, 2500), (info!.Width, info.Height));

        long before = GC.GetAllocatedBytesForCurrentThread();
        using var image = DatasetImages.DecodeFirstFrame(bomb, maxPixels: 4000 * 2500);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Single(image.Frames);
        Assert.Equal((4000, 2500), (image.Width, image.Height));
        // One RGB frame is 30 MB; every frame would be 720 MB.
        Assert.True(allocated < 100L << 20, $"decoding allocated {allocated >> 20} MiB");
    }

    [Fact]
    public void AnImageLargerThanItsPixelBudgetIsRefusedBeforeItsPixelsAreAllocated()
    {
        using var large = new Image<Rgb24>(1000, 1000);
        using var png = new MemoryStream();
        large.SaveAsPng(png);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidImageContentException>(() => DatasetImages.DecodeFirstFrame(png.ToArray(), maxPixels: 10_000));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Contains("decoding needs more than 160000 bytes", e.Message);
        Assert.True(allocated < 1L << 20, $"a refused decode allocated {allocated >> 10} KiB");
    }

    [Fact]
    public async Task AFormatTheDocsDoNotListIsReportedAndSkipped()
    {
        using var folder = new TempDirectory();
        using (var image = new Image<Rgb24>(8, 8))
            await image.SaveAsync(folder.File("scan.tiff"), new TiffEncoder(), Token);
        await File.WriteAllTextAsync(folder.File("scan.txt"), "a scanned page", Token);
        await File.WriteAllBytesAsync(folder.File("bomb.gif"), GifBomb(4000, 2500, 24), Token);
        await File.WriteAllTextAsync(folder.File("bomb.txt"), "many frames", Token);

        var manifest = await DatasetScanner.ScanAsync(DatasetSources.Open(new DatasetLocation { Folder = "." }, null!, new TrainingOptions { DatasetsRoot = folder.Path }),
            new DatasetLimits(1 << 20, 40_000_000, 100), Token);

        var problem = Assert.Single(manifest.Problems);
        Assert.Equal("scan.tiff", problem.Name);
        Assert.Equal("undecodable: not an image in a format datasets may use (PNG, JPEG, WEBP, BMP, GIF).", problem.Reason);
        Assert.Equal("bomb.gif", Assert.Single(manifest.Items).Name);
    }
}
