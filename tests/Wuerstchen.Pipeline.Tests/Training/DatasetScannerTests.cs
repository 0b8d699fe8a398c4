using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Pipeline.Tests.Training;

public sealed class DatasetScannerTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static readonly DatasetLimits Limits = new(1 << 20, 1 << 20, 100);

    private static byte[] Png(byte shade, int size = 8)
    {
        using var image = new Image<Rgb24>(size, size, new Rgb24(shade, shade, shade));
        using var output = new MemoryStream();
        image.SaveAsPng(output);
        return output.ToArray();
    }

    private static async Task<DatasetManifest> ScanAsync(TempDirectory folder) =>
        await DatasetScanner.ScanAsync(DatasetSources.Open(new DatasetLocation { Folder = "." }, null!, new TrainingOptions { DatasetsRoot = folder.Path }), Limits, Token);

    [Fact]
    public async Task PairsInNestedFoldersAreReadWithTheirCaptionsAndAmbiguousOnesReported()
    {
        using var folder = new TempDirectory();
        Directory.CreateDirectory(folder.File("sub"));
        await File.WriteAllBytesAsync(folder.File("a.png"), Png(10), Token);
        await File.WriteAllTextAsync(folder.File("a.txt"), "\uFEFF  a grey square \n", Token);
        await File.WriteAllBytesAsync(folder.File("sub/b.jpg"), Png(20), Token);
        await File.WriteAllTextAsync(folder.File("sub/b.txt"), "another one", Token);
        await File.WriteAllBytesAsync(folder.File("sub/b.png"), Png(30), Token);

        var manifest = await ScanAsync(folder);

        Assert.Equal(DatasetManifest.PairsFormat, manifest.Format);
        Assert.Equal([("a.png", "a grey square"), ("sub/b.jpg", "another one")], manifest.Items.Select(i => (i.Name, i.Caption)));
        Assert.Equal((8, 8), (manifest.Items[0].Width, manifest.Items[0].Height));
        var problem = Assert.Single(manifest.Problems);
        Assert.Equal("sub/b.png", problem.Name);
        Assert.Contains("ambiguous", problem.Reason);
    }

    [Fact]
    public async Task TheVersionChangesWithAnImageOrCaptionButNotWithAnItemThatIsSkipped()
    {
        using var folder = new TempDirectory();
        await File.WriteAllBytesAsync(folder.File("a.png"), Png(10), Token);
        await File.WriteAllTextAsync(folder.File("a.txt"), "first", Token);
        string original = (await ScanAsync(folder)).Version;

        await File.WriteAllBytesAsync(folder.File("broken.png"), [1, 2, 3], Token);
        await File.WriteAllTextAsync(folder.File("broken.txt"), "never trained", Token);
        Assert.Equal(original, (await ScanAsync(folder)).Version);

        await File.WriteAllTextAsync(folder.File("a.txt"), "second", Token);
        string recaptioned = (await ScanAsync(folder)).Version;
        Assert.NotEqual(original, recaptioned);

        await File.WriteAllBytesAsync(folder.File("a.png"), Png(11), Token);
        Assert.NotEqual(recaptioned, (await ScanAsync(folder)).Version);
    }

    [Fact]
    public async Task AFolderOutsideTheDatasetsRootIsNotADataset()
    {
        using var root = new TempDirectory();
        var options = new TrainingOptions { DatasetsRoot = root.Path };
        Assert.Null(DatasetSources.ResolveFolder("../elsewhere", options));
        Assert.Null(DatasetSources.ResolveFolder("/etc", options));
        Assert.Null(DatasetSources.ResolveFolder("x", new TrainingOptions()));
        Directory.CreateDirectory(root.File("inside"));
        Assert.Equal(root.File("inside"), DatasetSources.ResolveFolder("inside", options));
    }
}
