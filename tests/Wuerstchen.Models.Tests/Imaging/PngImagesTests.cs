using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Models.Imaging;
using Wuerstchen.Models.Pipelines;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Imaging;

public sealed class PngImagesTests
{
    private static readonly GenerationRecipe Recipe = new()
    {
        Prompt = "Pokémon café 😀 漢字 <|endoftext|>",
        NegativePrompt = "blurry",
        Seed = 18446744073709551615UL,
        Width = 256,
        Height = 128,
        ImagesPerPrompt = 2,
        ImageIndex = 1,
        PriorTimesteps = [1.0, 0.6667, 0.0],
        PriorGuidanceScale = 4,
        DecoderSteps = 12,
        PriorModel = "warp-ai/wuerstchen-prior",
        DecoderModel = "warp-ai/wuerstchen",
        Precision = "float32",
    };

    [Fact]
    public void TheRecipeRoundTripsThroughThePng()
    {
        using var pixels = randint(0, 256, [8, 16, 3], dtype: ScalarType.Byte);
        byte[] png = PngImages.Encode(pixels, Recipe);

        var recipe = PngImages.ReadRecipe(new MemoryStream(png));
        Assert.NotNull(recipe);
        Assert.Equal(Recipe.ToJson(), recipe.ToJson());
    }

    [Fact]
    public void PixelsArePreservedExactly()
    {
        using var pixels = randint(0, 256, [5, 7, 3], dtype: ScalarType.Byte);
        byte[] png = PngImages.Encode(pixels, null);
        using var image = Image.Load<Rgb24>(png);
        Assert.Equal(7, image.Width);
        Assert.Equal(5, image.Height);
        var expected = pixels.data<byte>().ToArray();
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++)
            {
                var p = image[x, y];
                int at = (y * 7 + x) * 3;
                Assert.Equal((expected[at], expected[at + 1], expected[at + 2]), (p.R, p.G, p.B));
            }
        Assert.Null(PngImages.ReadRecipe(new MemoryStream(png)));
    }

    [Fact]
    public void ToBytesRoundsLikeTheReferenceAndClamps()
    {
        using var images = tensor(new float[] { -0.5f, 0f, 0.5f / 255, 1.5f / 255, 0.5f, 1f, 2f, 0.2f, 0.7f }).view(1, 3, 1, 3);
        using var bytes = PngImages.ToBytes(images);
        Assert.Equal(new long[] { 1, 1, 3, 3 }, bytes.shape);
        // Channel-last order: pixel 0 = (c0, c1, c2) = (-0.5, 1.5/255 → 2, 2.0) …; round-half-to-even as numpy does.
        Assert.Equal(new byte[] { 0, 2, 255, 0, 128, 51, 0, 255, 178 }, bytes.data<byte>().ToArray());
    }

    [Fact]
    public void MatchesTheReferencesUint8ImagesWithinOneLevel()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("pipeline_basic");
        var images = reference.Load("images").permute(0, 3, 1, 2);
        var bytes = PngImages.ToBytes(images);
        var difference = (bytes.to(int32) - reference.Load("images_uint8").to(int32)).abs().max().item<int>();
        Assert.True(difference <= 1, $"uint8 conversion differs by {difference} levels");
    }

    [Fact]
    public void RejectsATensorThatIsNotAnRgbByteImage()
    {
        using var wrong = zeros(3, 4, 4);
        Assert.Throws<ArgumentException>(() => PngImages.Encode(wrong, null));
    }
}
