using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.Memory;
using SixLabors.ImageSharp.Metadata;
using SixLabors.ImageSharp.PixelFormats;

namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// How dataset images are read: only the documented formats (PNG, JPEG, WebP, BMP, GIF), only the first frame of an
/// animated one, and every decode under a memory budget of <see cref="BytesPerPixel"/> × the pixel limit, so a small
/// file that declares a huge canvas or many frames (a decompression bomb) cannot take more than one frame's worth.
/// </summary>
public static class DatasetImages
{
    /// <summary>Bytes a decode may allocate per allowed pixel: the decoded frame (4 at most) and the decoders' working buffers.</summary>
    public const int BytesPerPixel = 16;

    public static readonly IReadOnlyList<string> Formats = ["PNG", "JPEG", "WEBP", "BMP", "GIF"];

    public static readonly IReadOnlySet<string> Extensions = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif",
    };

    private static readonly Configuration Restricted = new(
        new PngConfigurationModule(), new JpegConfigurationModule(), new WebpConfigurationModule(), new BmpConfigurationModule(), new GifConfigurationModule());

    static DatasetImages()
    {
        Restricted.ImageFormatsManager.SetDecoder(GifFormat.Instance, new GifDecoder { DecodingMode = FrameDecodingMode.First, MaxFrames = 1 });
    }

    /// <summary>The header's format and size, before any pixel is decoded; throws the decoders' exceptions for unreadable data.</summary>
    public static (IImageFormat? Format, IImageInfo? Info) Identify(byte[] bytes)
    {
        try
        {
            var info = Image.Identify(Restricted, bytes, out var format);
            return (format, info);
        }
        catch (Exception e) when (IsDecoderFault(e))
        {
            throw Unreadable(e);
        }
    }

    /// <summary>
    /// A decoder that fails on hostile data with something other than its documented errors (the fuzzing suite found
    /// InvalidOperationException for a BMP header of 12×1811939337): reported as unreadable content like the rest.
    /// </summary>
    private static bool IsDecoderFault(Exception e) =>
        e is not (ImageFormatException or NotSupportedException or InvalidDataException or OutOfMemoryException or OperationCanceledException);

    private static InvalidImageContentException Unreadable(Exception e) => new($"the decoder could not read it ({e.Message})", e);

    /// <summary>
    /// Decodes the first frame as RGB under a memory budget for <paramref name="maxPixels"/>; an image needing more
    /// throws <see cref="InvalidImageContentException"/> when the budget runs out, before it is allocated.
    /// </summary>
    public static Image<Rgb24> DecodeFirstFrame(byte[] bytes, long maxPixels)
    {
        var configuration = Restricted.Clone();
        configuration.MemoryAllocator = new BudgetedAllocator(checked(maxPixels * BytesPerPixel));
        Image<Rgb24> image;
        try
        {
            image = Image.Load<Rgb24>(configuration, bytes);
        }
        catch (Exception e) when (IsDecoderFault(e))
        {
            throw Unreadable(e);
        }
        if (image.Frames.Count > 1 || (long)image.Width * image.Height > maxPixels)
        {
            string found = $"{image.Frames.Count} frame(s) of {image.Width}×{image.Height}";
            image.Dispose();
            throw new InvalidImageContentException($"the image decoded to {found}; only one frame within {maxPixels} pixels is read.");
        }
        return image;
    }

    /// <summary>Hands out memory until a total of <c>budget</c> bytes has been asked for, then refuses.</summary>
    private sealed class BudgetedAllocator(long budget) : MemoryAllocator
    {
        private readonly MemoryAllocator _inner = new SimpleGcMemoryAllocator();
        private long _allocated;

        protected override int GetBufferCapacityInBytes() => 64 << 20;

        public override System.Buffers.IMemoryOwner<T> Allocate<T>(int length, AllocationOptions options = AllocationOptions.None)
        {
            long bytes = (long)length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
            if (Interlocked.Add(ref _allocated, bytes) > budget)
                throw new InvalidImageContentException($"decoding needs more than {budget} bytes; the image is larger than its header's pixel count allows (many frames or a decompression bomb).");
            return _inner.Allocate<T>(length, options);
        }
    }
}
