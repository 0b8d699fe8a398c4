using System.IO.Compression;
using System.Text;
using CsCheck;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Bmp;
using SixLabors.ImageSharp.Formats.Gif;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Formats.Png;
using SixLabors.ImageSharp.Formats.Webp;
using SixLabors.ImageSharp.PixelFormats;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Conversion;
using Wuerstchen.Pipeline.Tests.Conversion;
using Wuerstchen.Pipeline.Tests.Hardening;
using Wuerstchen.Pipeline.Training;
using static TorchSharp.torch;

namespace Wuerstchen.Pipeline.Tests.Fuzzing;

/// <summary>Fuzzing of the pipeline's parsers of untrusted input: pickles, checkpoints, dataset images, bulk messages and prompt files.</summary>
public sealed class PipelineInputFuzzTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static byte[] ValidCheckpoint(TempDirectory temp)
    {
        string path = temp.File("valid.pt");
        TorchSaveWriter.Save(path, new Dictionary<string, object?>
        {
            ["model"] = new TorchSaveWriter.StateDict(new Dictionary<string, Tensor> { ["w"] = ones(2, 3), ["b"] = arange(4, dtype: ScalarType.Int64) }),
            ["step"] = 7,
        });
        return File.ReadAllBytes(path);
    }

    private static byte[] PickleOf(byte[] checkpoint)
    {
        using var archive = new ZipArchive(new MemoryStream(checkpoint));
        using var entry = archive.GetEntry("archive/data.pkl")!.Open();
        using var buffer = new MemoryStream();
        entry.CopyTo(buffer);
        return buffer.ToArray();
    }

    [Fact]
    public void ThePickleGlobalScannerOnlyThrowsTheConvertersError()
    {
        using var temp = new TempDirectory();
        byte[] pickle = PickleOf(ValidCheckpoint(temp));
        byte[] hostile = [0x80, 2, (byte)'c', .. "os\nsystem\n"u8, (byte)'.'];
        var gen = Gen.Frequency((4, Fuzz.Mutations(pickle, hostile)), (1, Gen.Byte.Array[0, 200]));
        Fuzz.Run("pickle global scanner", gen, 4000, bytes => PickleGlobalScanner.EnsureSafe(bytes, "fuzz.pkl"),
            [typeof(CheckpointConversionException)], Fuzz.Hex, new Fuzz.Limits(MaxBytesPerInput: 8L << 20, MaxSecondsPerInput: 5));
    }

    [Fact]
    public void ThePickleConverterOnlyThrowsItsOwnErrorAndWritesNothingHalfMade()
    {
        using var temp = new TempDirectory();
        byte[] checkpoint = ValidCheckpoint(temp);
        byte[] pickle = PickleOf(checkpoint);
        var converter = new PickleCheckpointConverter();
        // Whole archives mutated, and valid archives around a mutated pickle (which reaches the unpickler more often).
        var gen = Gen.Frequency(
            (1, Fuzz.Mutations(checkpoint).Select(bytes => (Archive: bytes, Pickle: (byte[]?)null))),
            (2, Fuzz.Mutations(pickle).Select(bytes => (Archive: (byte[]?)null!, Pickle: (byte[]?)bytes))));
        int input = 0;
        Fuzz.Run("pickle checkpoint converter", gen, 250, sample =>
        {
            string source = temp.File($"in-{input}.pt"), output = temp.File($"out-{input++}.safetensors");
            if (sample.Pickle is { } mutated)
                TorchSaveWriter.SaveRawPickle(source, mutated);
            else
                File.WriteAllBytes(source, sample.Archive);
            try
            {
                using var scope = NewDisposeScope();
                converter.ConvertAsync(source, output, new PickleConversionOptions { StateDictKey = "model" }, Token).GetAwaiter().GetResult();
                using var written = Wuerstchen.Models.IO.SafetensorsFile.Open(output);
            }
            catch (CheckpointConversionException)
            {
                Assert.False(File.Exists(output), "a refused conversion left an output file");
                throw;
            }
            finally
            {
                File.Delete(source);
                File.Delete(output);
            }
        }, [typeof(CheckpointConversionException)], s => Fuzz.Hex(s.Pickle ?? s.Archive), new Fuzz.Limits(MaxBytesPerInput: 64L << 20, MaxSecondsPerInput: 10));
    }

    private static byte[] Encode(Image image, SixLabors.ImageSharp.Formats.IImageEncoder encoder)
    {
        using var output = new MemoryStream();
        image.Save(output, encoder);
        return output.ToArray();
    }

    [Fact]
    public void DatasetImageDecodingOnlyThrowsDecoderErrorsWithinItsBudget()
    {
        using var picture = new Image<Rgb24>(12, 9);
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 12; x++)
                picture[x, y] = new Rgb24((byte)(x * 20), (byte)(y * 25), (byte)(x * y));
        byte[][] seeds =
        [
            Encode(picture, new PngEncoder()), Encode(picture, new JpegEncoder { Quality = 80 }), Encode(picture, new GifEncoder()),
            Encode(picture, new BmpEncoder()), Encode(picture, new WebpEncoder { FileFormat = WebpFileFormatType.Lossless }),
            Encode(picture, new WebpEncoder { FileFormat = WebpFileFormatType.Lossy }), DatasetImageTests.GifBomb(3000, 2000, 30),
        ];
        const long maxPixels = 1_000_000;
        var gen = Gen.Frequency((6, Fuzz.Mutations(seeds)), (1, Gen.Byte.Array[0, 300]));
        Fuzz.Run("dataset image decoding", gen, 1500, bytes =>
        {
            var (_, info) = DatasetImages.Identify(bytes);
            if (info is null || (long)info.Width * info.Height > maxPixels)
                return;
            using var image = DatasetImages.DecodeFirstFrame(bytes, maxPixels);
            Assert.Single(image.Frames);
        }, [typeof(ImageFormatException), typeof(NotSupportedException), typeof(InvalidDataException)], Fuzz.Hex,
            new Fuzz.Limits(MaxBytesPerInput: maxPixels * DatasetImages.BytesPerPixel + (8L << 20), MaxSecondsPerInput: 10));
    }

    private static readonly Gen<string> JsonFragments = Gen.OneOf(
        Gen.Const("\"a cat\""), Gen.Const("{\"prompt\": \"a dog\", \"seed\": 3}"), Gen.Const("{\"text\": \"x\", \"width\": 256}"), Gen.Const("42"),
        Gen.Const("null"), Gen.Const("[]"), Gen.Const("{\"prompt\": 5}"), Gen.Const("{\"seed\": 1e400}"), Gen.Const("\"\\ud800\""), Gen.Const("{"),
        Gen.Const("{\"prompt\": \"p\", \"extra\": true}"), Gen.Const("{\"prompt\": \"p\", \"width\": -1, \"height\": 99999999999}"));

    [Fact]
    public void TheBulkMessageParserNeverThrowsAndHonoursTheLimit()
    {
        string valid = "{\"jobId\": \"job-1\", \"settings\": {\"width\": 128, \"priorSteps\": 2}, \"prompts\": [\"a\", {\"prompt\": \"b\", \"seed\": 4}]}";
        var structured = Gen.Select(
            Gen.OneOf(Gen.Const("\"job-1\""), Gen.Const("\"Bad Id\""), Gen.Const("7"), Gen.Const("\"" + new string('a', 70) + "\"")),
            Gen.OneOf(Gen.Const("{}"), Gen.Const("{\"width\": 128}"), Gen.Const("{\"colour\": 1}"), Gen.Const("[]"), Gen.Const("{\"priorTimesteps\": [1, 0]}")),
            JsonFragments.Array[0, 12],
            Gen.Bool,
            (id, settings, prompts, asFile) => asFile
                ? $"{{\"jobId\": {id}, \"settings\": {settings}, \"promptsBlob\": \"inputs/p.jsonl\"}}"
                : $"{{\"jobId\": {id}, \"settings\": {settings}, \"prompts\": [{string.Join(",", prompts)}]}}");
        var gen = Gen.Frequency(
            (3, structured),
            (3, Fuzz.Mutations(Encoding.UTF8.GetBytes(valid)).Select(b => Encoding.UTF8.GetString(b))),
            (1, Gen.String[Gen.Char, 0, 200]));
        const int maxPrompts = 8;
        Fuzz.RunAnswers("bulk queue message parser", gen, 4000, message =>
        {
            var (job, rejection) = BulkJobParser.Parse(message, maxPrompts);
            Assert.True((job is null) != (rejection is null));
            if (job?.Prompts is { } prompts)
                Assert.InRange(prompts.Count, 1, maxPrompts);
            return rejection is not null;
        }, [], m => m, new Fuzz.Limits(MaxBytesPerInput: 4L << 20, MaxSecondsPerInput: 5));
    }

    [Fact]
    public void ThePromptFileReaderAndCounterAgreeAndOnlyRefuseOversizedFiles()
    {
        var gen = Gen.Select(JsonFragments.Array[0, 14], Gen.OneOf(Gen.Const("\n"), Gen.Const("\r\n"), Gen.Const("\n \n"), Gen.Const("\n\t\n")),
            (lines, separator) => string.Join(separator, lines));
        const int maxPrompts = 10;
        Fuzz.Run("JSONL prompt file reader", gen, 1500, text =>
        {
            byte[] bytes = Encoding.UTF8.GetBytes(text);
            int counted = BulkPlanner.CountPromptLinesAsync(new MemoryStream(bytes), maxPrompts, Token).GetAwaiter().GetResult();
            try
            {
                var prompts = BulkPlanner.ReadJsonLinesAsync(new MemoryStream(bytes), maxPrompts, Token).GetAwaiter().GetResult();
                Assert.Equal(counted, prompts.Count);
                Assert.All(prompts, p => Assert.True((p.Prompt is null) != (p.Problem is null)));
            }
            catch (InvalidDataException)
            {
                Assert.True(counted > maxPrompts, $"the reader refused a file the counter found {counted} prompts in");
                throw;
            }
        }, [typeof(InvalidDataException)], t => t, new Fuzz.Limits(MaxBytesPerInput: 4L << 20, MaxSecondsPerInput: 5));
    }
}
