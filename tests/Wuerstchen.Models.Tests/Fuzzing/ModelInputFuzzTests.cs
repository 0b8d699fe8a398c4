using System.Text;
using CsCheck;
using TorchSharp;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Text;

namespace Wuerstchen.Models.Tests.Fuzzing;

/// <summary>Fuzzing of the model layer's parsers of untrusted input: safetensors headers and the tokenizer.</summary>
public sealed class ModelInputFuzzTests
{
    private static byte[] ValidSafetensors()
    {
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = torch.ones(4, dtype: torch.int64);
        using var stream = new MemoryStream();
        SafetensorsWriter.Write(stream, new Dictionary<string, torch.Tensor> { ["a.weight"] = a, ["b"] = b }, new Dictionary<string, string> { ["format"] = "pt" });
        return stream.ToArray();
    }

    private static readonly string[] DTypes = ["F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F8_E4M3", "X", ""];

    /// <summary>Headers built from parts a hostile file would use: huge, negative and zero dimensions, offsets past the end, overlaps, odd dtypes and metadata.</summary>
    private static readonly Gen<byte[]> StructuredHeaders =
        Gen.Select(
            Gen.Int[0, 4],
            Gen.Int[0, DTypes.Length - 1].Array[4],
            Gen.OneOf(Gen.Long[-3, 5], Gen.Long, Gen.Const(4294967296L), Gen.Const(long.MaxValue)).Array[0, 4].Array[4],
            Gen.OneOf(Gen.Long[-2, 64], Gen.Long).Array[0, 3].Array[4],
            Gen.OneOf(Gen.Const(""), Gen.Const(",\"__metadata__\":{\"k\":\"v\"}"), Gen.Const(",\"__metadata__\":{\"k\":1}"), Gen.Const(",\"__metadata__\":[]")),
            Gen.Int[0, 128],
            (count, dtypes, shapes, offsets, metadata, data) =>
            {
                var json = new StringBuilder("{");
                for (int i = 0; i < count; i++)
                    json.Append(i == 0 ? "" : ",").Append($"\"t{i}\":{{\"dtype\":\"{DTypes[dtypes[i]]}\",\"shape\":[{string.Join(",", shapes[i])}],\"data_offsets\":[{string.Join(",", offsets[i])}]}}");
                json.Append(count == 0 ? metadata.TrimStart(',') : metadata).Append('}');
                byte[] header = Encoding.UTF8.GetBytes(json.ToString());
                return BitConverter.GetBytes((ulong)header.Length).Concat(header).Concat(new byte[data]).ToArray();
            });

    [Fact]
    public void TheSafetensorsHeaderParserOnlyThrowsItsFormatError()
    {
        var gen = Gen.Frequency((3, StructuredHeaders), (3, Fuzz.Mutations(ValidSafetensors())), (1, Gen.Byte.Array[0, 300]));
        Fuzz.Run("safetensors header", gen, 3000, bytes =>
        {
            var header = SafetensorsHeader.Read(new MemoryStream(bytes), bytes.Length, "fuzz.safetensors");
            // A header that parses describes tensors that lie inside the data section and add up.
            foreach (var tensor in header.Tensors.Values)
                Assert.True(tensor.End <= bytes.Length - header.DataOffset && tensor.ByteLength == tensor.ElementCount * tensor.ElementSize);
        }, [typeof(SafetensorsFormatException)], Fuzz.Hex, new Fuzz.Limits(MaxBytesPerInput: 16L << 20, MaxSecondsPerInput: 5));
    }

    /// <summary>Prompts reach the tokenizer validated to at most Limits:MaxPromptLength (2000) characters.</summary>
    private const int MaxPromptLength = 2000;

    [Fact]
    public void TheTokenizerEncodesAnyTextIntoBoundedValidIds()
    {
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf("models/prior-pipeline/tokenizer"));
        var text = Gen.Frequency(
            (3, Gen.String[Gen.Char, 0, 400]),
            (2, Gen.String[Gen.Char["abc xyz.,'!?0123456789éß漢字🙂\t\n\u200b\u0000"], 0, 400]),
            (1, Gen.Int[0, MaxPromptLength].Select(n => new string('a', n))),
            (1, Gen.Int[0, MaxPromptLength / 3].Select(n => string.Concat(Enumerable.Repeat("🙂 ", n)))));
        Fuzz.Run("CLIP tokenizer", text, 1500, prompt =>
        {
            var ids = tokenizer.Encode(prompt);
            Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabularySize - 1));
            var padded = tokenizer.EncodeForModel(prompt);
            Assert.Equal(tokenizer.ModelMaxLength, padded.InputIds.Length);
            Assert.Equal(tokenizer.ModelMaxLength, padded.AttentionMask.Length);
        }, [], p => $"\"{p}\"", new Fuzz.Limits(MaxBytesPerInput: 64L << 20, MaxSecondsPerInput: 5));
    }
}
