using System.Text.Json;
using System.Text.Json.Nodes;
using Wuerstchen.Models.Text;
using Xunit;

namespace Wuerstchen.Models.Tests.Text;

public sealed class ClipTokenizerTests
{
    private const string PriorTokenizer = "models/prior-pipeline/tokenizer";
    private const string DecoderTokenizer = "models/decoder-pipeline/tokenizer";

    [Theory]
    [InlineData(PriorTokenizer)]
    [InlineData(DecoderTokenizer)]
    public void EveryGoldenCaseEncodesAsInTransformers(string tokenizerFolder)
    {
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(tokenizerFolder));
        var cases = ReadGoldenCases();
        Assert.NotEmpty(cases);

        var mismatches = new List<string>();
        foreach (var golden in cases)
        {
            var forModel = tokenizer.EncodeForModel(golden.Text, golden.InputIds.Length);
            var untruncated = tokenizer.Encode(golden.Text).Select(id => (long)id).ToArray();
            mismatches.AddRange(new[]
            {
                Mismatch(golden.Text, "input_ids", golden.InputIds, forModel.InputIds),
                Mismatch(golden.Text, "attention_mask", golden.AttentionMask, forModel.AttentionMask),
                Mismatch(golden.Text, "untruncated_ids", golden.UntruncatedIds, untruncated),
            }.OfType<string>());
        }

        Assert.True(mismatches.Count == 0,
            $"{tokenizerFolder}: {mismatches.Count} mismatches over {cases.Count} cases:\n{string.Join("\n", mismatches)}");
    }

    // Ids from Hugging Face tokenizers 0.23.2 with the prior pipeline's tokenizer.json, for rules the golden
    // cases do not reach.
    [Theory]
    [InlineData("<|STARTOFTEXT|>x", new[] { 49406, 49406, 343, 49407 })]
    [InlineData("<|ENDOFTEXT|>!!", new[] { 49406, 27, 347, 40786, 4160, 91, 285, 748, 49407 })]
    [InlineData("a<|startoftext|>!!", new[] { 49406, 320, 49406, 748, 49407 })]
    [InlineData("\U0001D400\U0001D401c", new[] { 49406, 15889, 222, 15889, 223, 322, 49407 })]
    [InlineData("\U0001D7CF\U0001D7D0", new[] { 49406, 6874, 253, 493, 6874, 253, 494, 49407 })]
    [InlineData("İstanbul ΣΑΣ", new[] { 49406, 328, 16384, 11231, 139, 225, 138, 109, 139, 481, 49407 })]
    [InlineData("e\u0301", new[] { 49406, 4166, 49407 })]
    public void EdgeCasesEncodeAsInHuggingFaceTokenizers(string text, int[] expected)
    {
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(PriorTokenizer));

        Assert.Equal(expected, tokenizer.Encode(text));
    }

    [Fact]
    public void PadTokenIsReadFromSpecialTokensMap()
    {
        using var folder = TokenizerCopy.Of(PriorTokenizer);
        var map = JsonNode.Parse(File.ReadAllText(folder.PathOf("special_tokens_map.json")))!;
        map["pad_token"] = "!";
        File.WriteAllText(folder.PathOf("special_tokens_map.json"), map.ToJsonString());
        int exclamationId = ReadVocabulary(folder.PathOf("vocab.json"))["!"];

        var tokenizer = ClipTokenizer.FromDirectory(folder.Path);
        var encoded = tokenizer.EncodeForModel("a photo of a cat", 10);

        Assert.Equal(exclamationId, tokenizer.PadTokenId);
        Assert.NotEqual(tokenizer.EosTokenId, tokenizer.PadTokenId);
        Assert.Equal(tokenizer.EosTokenId, encoded.InputIds[6]);
        Assert.All(encoded.InputIds[7..], id => Assert.Equal(exclamationId, id));
        Assert.Equal([1, 1, 1, 1, 1, 1, 1, 0, 0, 0], encoded.AttentionMask);
        // transformers adds a special token missing from tokenizer.json as an added token, so "!" in a
        // prompt becomes the pad id rather than the BPE token "!</w>".
        Assert.Equal(exclamationId, tokenizer.Encode("wow!")[2]);
    }

    [Fact]
    public void TruncationKeepsBosFirstAndEosLast()
    {
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(PriorTokenizer));
        string text = string.Join(" ", Enumerable.Repeat("a very long prompt", 40));

        var full = tokenizer.Encode(text);
        var truncated = tokenizer.EncodeForModel(text, 12);

        Assert.True(full.Count > 12);
        Assert.Equal(12, truncated.InputIds.Length);
        Assert.Equal(tokenizer.BosTokenId, truncated.InputIds[0]);
        Assert.Equal(tokenizer.EosTokenId, truncated.InputIds[^1]);
        Assert.Equal(full.Take(11).Select(id => (long)id), truncated.InputIds[..11]);
        Assert.All(truncated.AttentionMask, mask => Assert.Equal(1, mask));
    }

    [Fact]
    public void DefaultLengthIsTheModelMaxLength()
    {
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(PriorTokenizer));

        var encoded = tokenizer.EncodeForModel(["a cat", "a dog"]);

        Assert.All(encoded, prompt => Assert.Equal(tokenizer.ModelMaxLength, prompt.InputIds.Length));
        Assert.All(encoded, prompt => Assert.Equal(tokenizer.ModelMaxLength, prompt.AttentionMask.Length));
    }

    [Theory]
    [InlineData("a photo of an astronaut riding a horse on mars")]
    [InlineData("a cat, sitting on a mat. is it 7?")]
    [InlineData("caf\u00e9 au lait")]
    public void DecodeRoundTripsLowercasedText(string text)
    {
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(PriorTokenizer));

        Assert.Equal(text, tokenizer.Decode(tokenizer.Encode(text)));
        Assert.Equal($"<|startoftext|>{text} <|endoftext|>", tokenizer.Decode(tokenizer.Encode(text), skipSpecialTokens: false));
    }

    [Fact]
    public void ConcurrentEncodingMatchesSequentialEncoding()
    {
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(PriorTokenizer));
        string[] texts = [.. ReadGoldenCases().Select(c => c.Text), .. Enumerable.Range(0, 200).Select(i => $"prompt number {i} of many")];
        var reference = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(PriorTokenizer));
        var expected = texts.Select(reference.Encode).ToArray();

        var actual = new IReadOnlyList<int>[texts.Length];
        Parallel.For(0, texts.Length * 20, i => actual[i % texts.Length] = tokenizer.Encode(texts[i % texts.Length]));

        for (int i = 0; i < texts.Length; i++)
            Assert.Equal(expected[i], actual[i]);
    }

    [Fact]
    public void MissingMergesFileIsNamed()
    {
        string folder = ParityFixtures.PathOf(PriorTokenizer);
        string missing = Path.Combine(folder, "no-such-merges.txt");

        var error = Assert.Throws<FileNotFoundException>(() => ClipTokenizer.FromFiles(
            Path.Combine(folder, "vocab.json"), missing, Path.Combine(folder, "special_tokens_map.json"), Path.Combine(folder, "tokenizer_config.json")));

        Assert.Contains("no-such-merges.txt", error.Message);
        Assert.Equal(missing, error.FileName);
    }

    [Fact]
    public void CorruptVocabularyIsNamedWithItsLine()
    {
        using var folder = TokenizerCopy.Of(PriorTokenizer);
        File.WriteAllText(folder.PathOf("vocab.json"), "{\n  \"a\": 1,\n  \"b\": \"two\"\n}");

        var error = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromDirectory(folder.Path));

        Assert.Contains("vocab.json", error.Message);
        Assert.Contains("line 3", error.Message);
    }

    [Fact]
    public void MalformedMergeLineIsNamedWithItsLine()
    {
        using var folder = TokenizerCopy.Of(PriorTokenizer);
        var lines = File.ReadAllLines(folder.PathOf("merges.txt"));
        lines[2] = "t h e";
        File.WriteAllLines(folder.PathOf("merges.txt"), lines);

        var error = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromDirectory(folder.Path));

        Assert.Contains("merges.txt", error.Message);
        Assert.Contains("line 3", error.Message);
    }

    [Fact]
    public void SpecialTokenOutsideTheVocabularyIsRejected()
    {
        using var folder = TokenizerCopy.Of(PriorTokenizer);
        var map = JsonNode.Parse(File.ReadAllText(folder.PathOf("special_tokens_map.json")))!;
        map["pad_token"] = "<|pad|>";
        File.WriteAllText(folder.PathOf("special_tokens_map.json"), map.ToJsonString());

        var error = Assert.Throws<InvalidDataException>(() => ClipTokenizer.FromDirectory(folder.Path));

        Assert.Contains("<|pad|>", error.Message);
        Assert.Contains("special_tokens_map.json", error.Message);
    }

    [Fact]
    public void BadArgumentsAreRejected()
    {
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(PriorTokenizer));

        Assert.Throws<ArgumentNullException>(() => tokenizer.Encode(null!));
        Assert.Throws<ArgumentNullException>(() => tokenizer.EncodeForModel((string)null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.EncodeForModel("a cat", 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([tokenizer.VocabularySize + 5]));
    }

    private static string? Mismatch(string prompt, string what, long[] expected, long[] actual)
    {
        int common = Math.Min(expected.Length, actual.Length);
        int position = Enumerable.Range(0, common).FirstOrDefault(i => expected[i] != actual[i], -1);
        if (position < 0 && expected.Length == actual.Length)
            return null;
        if (position < 0)
            position = common;
        return $"{JsonSerializer.Serialize(prompt)}: {what} differ first at position {position}: " +
               $"expected {At(expected, position)}, got {At(actual, position)} (lengths {expected.Length} and {actual.Length})";
    }

    private static string At(long[] ids, int position) => position < ids.Length ? ids[position].ToString() : "nothing";

    private static List<GoldenCase> ReadGoldenCases() =>
        JsonSerializer.Deserialize<List<GoldenCase>>(
            File.ReadAllText(ParityFixtures.PathOf("cases/tokenizer.json")),
            new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!;

    private static Dictionary<string, int> ReadVocabulary(string path) =>
        JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(path))!;

    private sealed record GoldenCase(string Text, long[] InputIds, long[] AttentionMask, long[] UntruncatedIds);

    /// <summary>A writable temporary copy of a fixture tokenizer folder, deleted on dispose.</summary>
    private sealed class TokenizerCopy : IDisposable
    {
        private TokenizerCopy(string path) => Path = path;

        public string Path { get; }

        public static TokenizerCopy Of(string fixtureFolder)
        {
            string source = ParityFixtures.PathOf(fixtureFolder);
            string target = Directory.CreateTempSubdirectory("clip-tokenizer-").FullName;
            foreach (string file in Directory.GetFiles(source))
            {
                string copy = System.IO.Path.Combine(target, System.IO.Path.GetFileName(file));
                File.Copy(file, copy);
                File.SetAttributes(copy, FileAttributes.Normal);
            }
            return new TokenizerCopy(target);
        }

        public string PathOf(string fileName) => System.IO.Path.Combine(Path, fileName);

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
