using SixLabors.ImageSharp;
using SixLabors.ImageSharp.PixelFormats;
using TorchSharp;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Effnet;

/// <summary>
/// The training example's image transform for the EfficientNet encoder (upstream: train_text_to_image_prior.py, <c>effnet_transforms</c>): resize the short side to the
/// resolution (bilinear, antialiased), center crop a square, scale to [0, 1], normalise with the ImageNet mean and
/// std. The reference resizes with PIL, which rounds the resized pixels to 8 bits; so does this, which keeps the
/// result within one 8-bit level of the reference's (PIL's fixed-point filter and libtorch's float one round a few
/// pixels differently).
/// </summary>
public static class EffnetImageTransform
{
    public static IReadOnlyList<float> Mean { get; } = [0.485f, 0.456f, 0.406f];

    public static IReadOnlyList<float> Std { get; } = [0.229f, 0.224f, 0.225f];

    /// <summary>An image as (H, W, 3) bytes.</summary>
    public static Tensor ToRgbBytes(Image<Rgb24> image)
    {
        byte[] pixels = new byte[image.Width * image.Height * 3];
        image.CopyPixelDataTo(pixels);
        return tensor(pixels, dtype: ScalarType.Byte).view(image.Height, image.Width, 3);
    }

    /// <summary>(H, W, 3) bytes → (3, <paramref name="resolution"/>, <paramref name="resolution"/>) float32, normalised.</summary>
    public static Tensor Apply(Tensor rgbBytes, int resolution)
    {
        if (rgbBytes.dim() != 3 || rgbBytes.shape[2] != 3)
            throw new ArgumentException($"Expected an (H, W, 3) image; got [{string.Join(", ", rgbBytes.shape)}].", nameof(rgbBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(resolution, 1);
        using var scope = NewDisposeScope();
        long height = rgbBytes.shape[0], width = rgbBytes.shape[1];
        var (newHeight, newWidth) = ResizedSize(height, width, resolution);
        var pixels = rgbBytes.permute(2, 0, 1).unsqueeze(0).to(float32);
        if (newHeight != height || newWidth != width)
        {
            pixels = nn.functional.interpolate(pixels, size: [newHeight, newWidth], mode: InterpolationMode.Bilinear, align_corners: false, antialias: true)
                .round().clamp(0, 255);
        }
        long top = CropOffset(newHeight, resolution), left = CropOffset(newWidth, resolution);
        if (top < 0 || left < 0)
            throw new InvalidOperationException($"The resized image {newWidth}×{newHeight} is smaller than the crop {resolution}.");
        var cropped = pixels[.., .., TensorIndex.Slice(top, top + resolution), TensorIndex.Slice(left, left + resolution)] / 255.0;
        var mean = tensor(Mean.ToArray()).view(1, 3, 1, 1);
        var std = tensor(Std.ToArray()).view(1, 3, 1, 1);
        return ((cropped - mean) / std).squeeze(0).contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>torchvision's <c>Resize(size)</c> output for an int size: the short side becomes <paramref name="size"/>, the long side ⌊size·long/short⌋.</summary>
    public static (long Height, long Width) ResizedSize(long height, long width, int size)
    {
        long shortSide = Math.Min(height, width), longSide = Math.Max(height, width);
        if (shortSide == size)
            return (height, width);
        long newLong = (long)((double)size * longSide / shortSide);
        return width <= height ? (newLong, size) : (size, newLong);
    }

    /// <summary>torchvision's <c>CenterCrop</c> offset: <c>int(round((size − crop) / 2))</c>, Python rounding half to even.</summary>
    public static long CropOffset(long size, int crop) => (long)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);
}
