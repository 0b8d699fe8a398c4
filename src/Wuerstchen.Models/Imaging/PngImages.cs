using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using Wuerstchen.Models.Pipelines;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Imaging;

/// <summary>Images in [0, 1] → 8-bit PNG with the generation recipe in its text chunks, and back.</summary>
public static class PngImages
{
    /// <summary>Text keyword holding the recipe as JSON (UTF-8, iTXt).</summary>
    public const string RecipeKeyword = "wuerstchen:recipe";

    /// <summary>Text keyword with a human-readable summary, as other generators write it.</summary>
    public const string ParametersKeyword = "parameters";

    /// <summary>(N, 3, H, W) floats in [0, 1] → (N, H, W, 3) bytes on the CPU, rounding as the reference's <c>numpy_to_pil</c> does.</summary>
    public static Tensor ToBytes(Tensor images)
    {
        using var scope = NewDisposeScope();
        return ToBytesOnDevice(images).cpu().MoveToOuterDisposeScope();
    }

    /// <summary>
    /// <see cref="ToBytes"/>'s conversion where the images are (a GPU): float32, clamp, ×255, round half to even, to bytes,
    /// channels last. The same float32 operations on any device give the same bytes.
    /// </summary>
    public static Tensor ToBytesOnDevice(Tensor images)
    {
        using var scope = NewDisposeScope();
        return (images.detach().to(float32).clamp(0, 1) * 255).round().to(ScalarType.Byte)
            .permute(0, 2, 3, 1).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Encodes one (H, W, 3) byte image as PNG with the recipe embedded.</summary>
    public static byte[] Encode(Tensor rgbBytes, GenerationRecipe? recipe)
    {
        if (rgbBytes.dim() != 3 || rgbBytes.shape[2] != 3 || rgbBytes.dtype != ScalarType.Byte)
            throw new ArgumentException($"Expected an (H, W, 3) byte image; got [{string.Join(", ", rgbBytes.shape)}] {rgbBytes.dtype}.", nameof(rgbBytes));
        int height = (int)rgbBytes.shape[0], width = (int)rgbBytes.shape[1];
        using var contiguous = rgbBytes.cpu().contiguous();
        using var image = Image.LoadPixelData<Rgb24>(contiguous.bytes, width, height);
        if (recipe is not null)
        {
            var png = image.Metadata.GetPngMetadata();
            // A language tag makes the encoder write iTXt (UTF-8); plain tEXt is Latin-1 and would mangle prompts.
            png.TextData.Add(new PngTextData(RecipeKeyword, recipe.ToJson(), "x-json", ""));
            png.TextData.Add(new PngTextData(ParametersKeyword, recipe.ToParametersText(), "en", ""));
        }
        using var output = new MemoryStream();
        image.SaveAsPng(output, new PngEncoder { ColorType = PngColorType.Rgb, BitDepth = PngBitDepth.Bit8 });
        return output.ToArray();
    }

    /// <summary>The recipe embedded in a PNG, or null if it carries none.</summary>
    public static GenerationRecipe? ReadRecipe(Stream png)
    {
        var info = Image.Identify(png) ?? throw new InvalidDataException("The data is not an image ImageSharp can read.");
        var text = info.Metadata.GetPngMetadata().TextData.FirstOrDefault(t => t.Keyword == RecipeKeyword);
        return text.Value is null ? null : GenerationRecipe.FromJson(text.Value);
    }
}
