using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Models.Effnet;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Effnet;

public sealed class EffnetImageTransformTests
{
    [Fact]
    public void TheFixtureImageIsPreprocessedWithinOneEightBitLevelOfTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("effnet");
        int resolution = int.Parse(reference.Metadata["resolution"], System.Globalization.CultureInfo.InvariantCulture);
        using var image = Image.Load<Rgb24>(ParityFixtures.PathOf("cases/effnet_input.png"));

        var pixels = EffnetImageTransform.Apply(EffnetImageTransform.ToRgbBytes(image), resolution);

        // PIL resizes in fixed point and rounds to 8 bits; libtorch's antialiased bilinear filter in float, rounded
        // here: some pixels land one level apart. One level after normalisation is 1/255/std (largest for std 0.224).
        double oneLevel = 1.0 / 255 / EffnetImageTransform.Std.Min() * 1.0001;
        Parity.AssertClose(pixels, reference.Load("pixel_values")[0], oneLevel, "pixel_values[0] (one 8-bit level)");
        var exact = (pixels - reference.Load("pixel_values")[0]).abs().lt(1e-5).to(ScalarType.Float32).mean().item<float>();
        TestContext.Current.TestOutputHelper?.WriteLine($"{exact:P2} of the values equal the reference's; the rest are one 8-bit level apart");
        Assert.True(exact > 0.9, $"only {exact:P1} of the values match the reference exactly; a resize that rounds like PIL matches nearly all");
    }

    [Theory]
    [InlineData(200, 300, 128, 128, 192)]
    [InlineData(300, 200, 128, 192, 128)]
    [InlineData(100, 100, 128, 128, 128)]
    [InlineData(768, 1024, 768, 768, 1024)]
    public void TheShortSideBecomesTheResolution(int height, int width, int resolution, int expectedHeight, int expectedWidth)
    {
        var (h, w) = EffnetImageTransform.ResizedSize(height, width, resolution);
        Assert.Equal((expectedHeight, expectedWidth), ((int)h, (int)w));
    }

    [Fact]
    public void CenterCropRoundsHalfToEvenAsPythonDoes()
    {
        Assert.Equal(32, EffnetImageTransform.CropOffset(192, 128));
        Assert.Equal(0, EffnetImageTransform.CropOffset(129, 128)); // round(0.5) = 0
        Assert.Equal(2, EffnetImageTransform.CropOffset(131, 128)); // round(1.5) = 2
    }
}
