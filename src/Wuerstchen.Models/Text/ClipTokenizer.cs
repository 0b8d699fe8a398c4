using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Wuerstchen.Models.Text;

/// <summary>Token ids and attention mask for one prompt, padded/truncated to a fixed length.</summary>
public sealed record TokenizedPrompt(long[] InputIds, long[] AttentionMask);

/// <summary>
/// CLIP's byte-level BPE tokenizer, giving the ids of Hugging Face's <c>CLIPTokenizerFast</c>. Added tokens
/// written in the text are split out first (those marked <c>normalized</c> after normalisation); the rest is
/// NFC-composed, whitespace-collapsed and lowercased, split into words (letter runs, single digits, runs of
/// other symbols, contractions), each word mapped to its UTF-8 bytes and merged by merge rank, with
/// <c>&lt;/w&gt;</c> marking the word's end. BOS and EOS wrap the result. Safe for concurrent use.
/// </summary>
public sealed class ClipTokenizer
{
    private const string EndOfWordSuffix = "</w>";
    private const int WordCacheCapacity = 10_000;

    // CLIP's pre-tokenizer regex keeps these whole; its byte-level step then splits off '<|' and '|>'.
    // They get this far only when not matched as added tokens, e.g. written in capitals.
    private static readonly string[] PreTokenizerSpecials = ["<|startoftext|>", "<|endoftext|>"];
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    // What Python's str.strip() removes: .NET's whitespace plus the separators U+001C..U+001F.
    private static readonly char[] PythonWhitespace =
        "\t\n\v\f\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
            .ToCharArray();

    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    private static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        RespectRequiredConstructorParameters = true,
    };

    private readonly Dictionary<int, string> _tokensById;
    private readonly Dictionary<long, (int Rank, int Id)> _merges;
    private readonly int[] _byteIds;
    private readonly int[] _finalByteIds;
    private readonly AddedToken[] _verbatimTokens;
    private readonly AddedToken[] _normalizedTokens;
    private readonly HashSet<int> _specialIds;
    private readonly bool _cleanUpTokenizationSpaces;
    private readonly ConcurrentDictionary<string, int[]> _wordCache = new();

    private ClipTokenizer(
        Dictionary<string, int> vocabulary,
        Dictionary<long, (int Rank, int Id)> merges,
        IReadOnlyList<AddedToken> addedTokens,
        (int Bos, int Eos, int Pad, int Unk) specialIds,
        int modelMaxLength,
        bool cleanUpTokenizationSpaces)
    {
        _tokensById = vocabulary.ToDictionary(entry => entry.Value, entry => entry.Key);
        foreach (var token in addedTokens)
            _tokensById[token.Id] = token.Content;
        _merges = merges;
        _byteIds = ByteToChar.Select(c => vocabulary.GetValueOrDefault(c.ToString(), specialIds.Unk)).ToArray();
        _finalByteIds = ByteToChar.Select(c => vocabulary.GetValueOrDefault(c + EndOfWordSuffix, specialIds.Unk)).ToArray();
        _verbatimTokens = addedTokens.Where(t => !t.Normalized).ToArray();
        _normalizedTokens = addedTokens.Where(t => t.Normalized).Select(t => t with { Content = Normalize(t.Content) }).ToArray();
        _specialIds = addedTokens.Where(t => t.Special).Select(t => t.Id).ToHashSet();
        (BosTokenId, EosTokenId, PadTokenId, UnkTokenId) = specialIds;
        ModelMaxLength = modelMaxLength;
        _cleanUpTokenizationSpaces = cleanUpTokenizationSpaces;
    }

    public int BosTokenId { get; }

    public int EosTokenId { get; }

    public int PadTokenId { get; }

    public int UnkTokenId { get; }

    public int ModelMaxLength { get; }

    public int VocabularySize => _tokensById.Count;

    /// <summary>
    /// Loads a tokenizer folder as published on the Hugging Face hub: <c>vocab.json</c> and <c>merges.txt</c>,
    /// <c>special_tokens_map.json</c> and <c>tokenizer_config.json</c>, and, when present, the added tokens of
    /// <c>tokenizer.json</c>.
    /// </summary>
    public static ClipTokenizer FromDirectory(string tokenizerDirectory)
    {
        ArgumentNullException.ThrowIfNull(tokenizerDirectory);
        if (!Directory.Exists(tokenizerDirectory))
            throw new DirectoryNotFoundException($"Tokenizer folder '{tokenizerDirectory}' does not exist.");

        string? IfPresent(string name) =>
            Path.Combine(tokenizerDirectory, name) is var path && File.Exists(path) ? path : null;

        return Load(
            Path.Combine(tokenizerDirectory, "vocab.json"),
            Path.Combine(tokenizerDirectory, "merges.txt"),
            IfPresent("special_tokens_map.json"),
            IfPresent("tokenizer_config.json"),
            IfPresent("tokenizer.json"));
    }

    /// <summary>
    /// Loads a tokenizer from its files. Special tokens are read from <paramref name="specialTokensMapPath"/>,
    /// falling back to <paramref name="tokenizerConfigPath"/>, which also gives <see cref="ModelMaxLength"/>.
    /// Without tokenizer.json they are the only added tokens, matched in the text as their <c>normalized</c>
    /// flags in these files say.
    /// </summary>
    public static ClipTokenizer FromFiles(
        string vocabJsonPath, string mergesPath, string? specialTokensMapPath = null, string? tokenizerConfigPath = null) =>
        Load(vocabJsonPath, mergesPath, specialTokensMapPath, tokenizerConfigPath, tokenizerJsonPath: null);

    /// <summary>BOS, the tokens of <paramref name="text"/> and EOS, neither truncated nor padded.</summary>
    public IReadOnlyList<int> Encode(string text)
    {
        var ids = new List<int> { BosTokenId };
        AppendTokenIds(text, ids);
        ids.Add(EosTokenId);
        return ids;
    }

    /// <summary>
    /// The encoding a text encoder takes: BOS, the tokens cut to <paramref name="maxLength"/> − 2, EOS, then
    /// padding up to <paramref name="maxLength"/> (default <see cref="ModelMaxLength"/>), masked out.
    /// </summary>
    public TokenizedPrompt EncodeForModel(string text, int? maxLength = null)
    {
        int length = maxLength ?? ModelMaxLength;
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 2, nameof(maxLength));

        var tokens = new List<int>();
        AppendTokenIds(text, tokens);
        int kept = Math.Min(tokens.Count, length - 2);

        var inputIds = new long[length];
        var attentionMask = new long[length];
        inputIds[0] = BosTokenId;
        for (int i = 0; i < kept; i++)
            inputIds[i + 1] = tokens[i];
        inputIds[kept + 1] = EosTokenId;
        Array.Fill(inputIds, PadTokenId, kept + 2, length - kept - 2);
        Array.Fill(attentionMask, 1L, 0, kept + 2);
        return new TokenizedPrompt(inputIds, attentionMask);
    }

    public IReadOnlyList<TokenizedPrompt> EncodeForModel(IReadOnlyList<string> texts, int? maxLength = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return texts.Select(text => EncodeForModel(text, maxLength)).ToArray();
    }

    /// <summary>
    /// The text of <paramref name="ids"/>: bytes back to UTF-8 (invalid sequences become U+FFFD), each
    /// <c>&lt;/w&gt;</c> a space, trimmed, and, when tokenizer_config.json asks for it, the spaces before
    /// punctuation and contractions removed, as in transformers.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (!_tokensById.TryGetValue(id, out string? token))
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is not in the vocabulary.");
            if (!skipSpecialTokens || !_specialIds.Contains(id))
                AppendTokenBytes(token, bytes);
        }

        string text = Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(bytes)).Replace(EndOfWordSuffix, " ").Trim(PythonWhitespace);
        return _cleanUpTokenizationSpaces ? CleanUpTokenizationSpaces(text) : text;
    }

    private void AppendTokenIds(string text, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var (segment, addedId) in SplitOnAddedTokens(text, _verbatimTokens))
        {
            if (addedId is { } id)
            {
                ids.Add(id);
                continue;
            }
            foreach (var (normalizedSegment, normalizedId) in SplitOnAddedTokens(Normalize(segment), _normalizedTokens))
            {
                if (normalizedId is { } normalizedTokenId)
                {
                    ids.Add(normalizedTokenId);
                    continue;
                }
                foreach (string word in PreTokenize(normalizedSegment))
                    ids.AddRange(EncodeWord(word));
            }
        }
    }

    /// <summary>Splits at the leftmost (then longest) occurrence of an added token, as Hugging Face does.</summary>
    private static IEnumerable<(string Text, int? AddedTokenId)> SplitOnAddedTokens(string text, AddedToken[] tokens)
    {
        int start = 0;
        while (start < text.Length)
        {
            AddedToken? match = null;
            int matchStart = text.Length;
            foreach (var token in tokens)
            {
                int index = text.IndexOf(token.Content, start, StringComparison.Ordinal);
                if (index >= 0 && (index < matchStart || index == matchStart && token.Content.Length > match!.Content.Length))
                    (match, matchStart) = (token, index);
            }

            if (matchStart > start)
                yield return (text[start..matchStart], null);
            if (match is null)
                yield break;
            yield return (match.Content, match.Id);
            start = matchStart + match.Content.Length;
        }
    }

    /// <summary>NFC, every whitespace run to one space, then Rust's per-character lowercase.</summary>
    private static string Normalize(string text)
    {
        // An unpaired surrogate (a JSON "\ud800" escape) is not Unicode: it becomes U+FFFD, as a UTF-8 round trip makes it.
        string composed = ReplaceUnpairedSurrogates(text).Normalize(NormalizationForm.FormC);
        var normalized = new StringBuilder(composed.Length);
        bool afterWhitespace = false;
        foreach (Rune rune in composed.EnumerateRunes())
        {
            if (Rune.IsWhiteSpace(rune))
            {
                if (!afterWhitespace)
                    normalized.Append(' ');
                afterWhitespace = true;
                continue;
            }
            afterWhitespace = false;
            if (rune.Value == 'İ')
                normalized.Append("i\u0307"); // the one character whose full lowercase mapping is two characters
            else
                normalized.Append(Rune.ToLowerInvariant(rune));
        }
        return normalized.ToString();
    }

    /// <summary>
    /// The words of CLIP's pre-tokenizer: contractions, letter runs, single digits and runs of other
    /// non-space characters; whitespace is dropped. Classifies whole code points, not UTF-16 units, so
    /// letters and digits outside the BMP count as letters and digits as they do in Hugging Face.
    /// </summary>
    private static IEnumerable<string> PreTokenize(string text)
    {
        int index = 0;
        while (index < text.Length)
        {
            if (MatchAt(text, index, PreTokenizerSpecials) is { } special)
            {
                yield return "<|";
                yield return special[2..^2];
                yield return "|>";
                index += special.Length;
                continue;
            }
            if (MatchAt(text, index, Contractions) is { } contraction)
            {
                yield return contraction;
                index += contraction.Length;
                continue;
            }

            int start = index;
            var kind = KindAt(text, index, out int width);
            index += width;
            if (kind == CharKind.Whitespace)
                continue;
            if (kind != CharKind.Digit)
            {
                while (index < text.Length && KindAt(text, index, out width) == kind)
                    index += width;
            }
            yield return text[start..index];
        }
    }

    private static string? MatchAt(string text, int index, string[] candidates)
    {
        foreach (string candidate in candidates)
        {
            if (text.AsSpan(index).StartsWith(candidate, StringComparison.Ordinal))
                return candidate;
        }
        return null;
    }

    private static CharKind KindAt(string text, int index, out int width)
    {
        Rune.DecodeFromUtf16(text.AsSpan(index), out Rune rune, out width);
        if (Rune.IsWhiteSpace(rune))
            return CharKind.Whitespace;
        if (Rune.IsLetter(rune))
            return CharKind.Letter;
        return Rune.IsNumber(rune) ? CharKind.Digit : CharKind.Other;
    }

    private int[] EncodeWord(string word)
    {
        if (_wordCache.TryGetValue(word, out int[]? cached))
            return cached;
        int[] ids = MergeWord(word);
        if (_wordCache.Count < WordCacheCapacity)
            _wordCache.TryAdd(word, ids);
        return ids;
    }

    /// <summary>
    /// Starts from one symbol per UTF-8 byte (the last carrying <c>&lt;/w&gt;</c>) and merges the lowest-ranked
    /// adjacent pair, leftmost first, until no pair has a merge.
    /// </summary>
    private int[] MergeWord(string word)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(word);
        var symbols = new List<int>(bytes.Length);
        for (int i = 0; i < bytes.Length; i++)
            symbols.Add(i == bytes.Length - 1 ? _finalByteIds[bytes[i]] : _byteIds[bytes[i]]);

        // pairRanks[i] is the rank of merging symbols[i] with symbols[i + 1].
        var pairRanks = new List<int>(symbols.Count);
        for (int i = 0; i + 1 < symbols.Count; i++)
            pairRanks.Add(RankOf(symbols[i], symbols[i + 1]));

        while (pairRanks.Count > 0)
        {
            int best = 0;
            for (int i = 1; i < pairRanks.Count; i++)
            {
                if (pairRanks[i] < pairRanks[best])
                    best = i;
            }
            if (pairRanks[best] == int.MaxValue)
                break;

            symbols[best] = _merges[MergeKey(symbols[best], symbols[best + 1])].Id;
            symbols.RemoveAt(best + 1);
            pairRanks.RemoveAt(best);
            if (best > 0)
                pairRanks[best - 1] = RankOf(symbols[best - 1], symbols[best]);
            if (best < pairRanks.Count)
                pairRanks[best] = RankOf(symbols[best], symbols[best + 1]);
        }
        return symbols.ToArray();
    }

    private int RankOf(int left, int right) =>
        _merges.TryGetValue(MergeKey(left, right), out var merge) ? merge.Rank : int.MaxValue;

    private static long MergeKey(int left, int right) => (long)left << 32 | (uint)right;

    private static void AppendTokenBytes(string token, List<byte> bytes)
    {
        if (token.All(CharToByte.ContainsKey))
            bytes.AddRange(token.Select(c => CharToByte[c]));
        else
            bytes.AddRange(Encoding.UTF8.GetBytes(token)); // an added token outside the byte alphabet
    }

    private static string ReplaceUnpairedSurrogates(string text)
    {
        if (!text.Any(char.IsSurrogate))
            return text;
        var clean = new StringBuilder(text.Length);
        foreach (Rune rune in text.EnumerateRunes())
            clean.Append(rune.ToString());
        return clean.ToString();
    }

    private static string CleanUpTokenizationSpaces(string text) =>
        text.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
            .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    /// <summary>GPT-2's reversible map of bytes to printable characters: printable Latin-1 maps to itself.</summary>
    private static char[] BuildByteToChar()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }

    private static ClipTokenizer Load(
        string vocabJsonPath, string mergesPath, string? specialTokensMapPath, string? tokenizerConfigPath, string? tokenizerJsonPath)
    {
        var vocabulary = ReadVocabulary(vocabJsonPath);
        var merges = ReadMerges(mergesPath, vocabulary);
        var specialTokensMap = specialTokensMapPath is null ? (JsonElement?)null : ReadJsonObject(specialTokensMapPath);
        var config = tokenizerConfigPath is null ? (JsonElement?)null : ReadJsonObject(tokenizerConfigPath);
        List<AddedToken> addedTokens = tokenizerJsonPath is null ? [] : [.. ReadJson<TokenizerDefinition>(tokenizerJsonPath).AddedTokens];
        if (addedTokens.Find(t => t.Content.Length == 0) is not null)
            throw new InvalidDataException($"'{tokenizerJsonPath}' defines an added token with empty content.");

        // As in transformers: special_tokens_map.json overrides tokenizer_config.json, and a special token that
        // tokenizer.json lacks becomes an added token too, so a pad token "!" is matched whole in the text.
        int SpecialTokenId(string key)
        {
            var (content, normalized, definedIn) =
                ReadSpecialToken(specialTokensMap, specialTokensMapPath, key)
                ?? ReadSpecialToken(config, tokenizerConfigPath, key)
                ?? throw new InvalidDataException(
                    $"No {key} is defined in '{specialTokensMapPath ?? "(no special_tokens_map.json given)"}' " +
                    $"or '{tokenizerConfigPath ?? "(no tokenizer_config.json given)"}'.");
            if (addedTokens.Find(t => t.Content == content) is { } added)
                return added.Id;
            if (!vocabulary.TryGetValue(content, out int id))
                throw new InvalidDataException(
                    $"The {key} '{content}' defined in '{definedIn}' is not in the vocabulary '{vocabJsonPath}'.");
            addedTokens.Add(new AddedToken(id, content, normalized, Special: true));
            return id;
        }

        int bos = SpecialTokenId("bos_token"), eos = SpecialTokenId("eos_token"), unk = SpecialTokenId("unk_token");
        int pad = SpecialTokenId("pad_token");

        return new ClipTokenizer(
            vocabulary,
            merges,
            addedTokens,
            (bos, eos, pad, unk),
            ReadModelMaxLength(config, tokenizerConfigPath),
            config?.TryGetProperty("clean_up_tokenization_spaces", out var cleanUp) == true && cleanUp.ValueKind == JsonValueKind.True);
    }

    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        var vocabulary = ReadJson<Dictionary<string, int>>(path);
        var tokensById = new Dictionary<int, string>(vocabulary.Count);
        foreach (var (token, id) in vocabulary)
        {
            if (!tokensById.TryAdd(id, token))
                throw new InvalidDataException($"'{path}' gives the id {id} to both '{tokensById[id]}' and '{token}'.");
        }
        return vocabulary;
    }

    /// <summary>Merges keyed by the pair's ids, ranked by their order in the file as in Hugging Face.</summary>
    private static Dictionary<long, (int Rank, int Id)> ReadMerges(string path, Dictionary<string, int> vocabulary)
    {
        RequireFile(path);
        var merges = new Dictionary<long, (int Rank, int Id)>();
        int lineNumber = 0;
        int rank = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.StartsWith("#version", StringComparison.Ordinal))
                continue;
            string[] parts = line.Split(' ');
            if (parts.Length != 2)
                throw new InvalidDataException($"'{path}' line {lineNumber}: expected two tokens separated by one space, found '{line}'.");
            if (!vocabulary.TryGetValue(parts[0], out int left)
                || !vocabulary.TryGetValue(parts[1], out int right)
                || !vocabulary.TryGetValue(parts[0] + parts[1], out int merged))
                throw new InvalidDataException($"'{path}' line {lineNumber}: the merge '{line}' or its result is not in the vocabulary.");
            merges[MergeKey(left, right)] = (rank++, merged);
        }
        return merges;
    }

    private static (string Content, bool Normalized, string DefinedIn)? ReadSpecialToken(JsonElement? file, string? path, string key)
    {
        if (file is not { } root || !root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        if (value.ValueKind == JsonValueKind.String)
            return (value.GetString()!, false, path!);
        if (value.ValueKind == JsonValueKind.Object
            && value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
        {
            bool normalized = value.TryGetProperty("normalized", out var flag) && flag.ValueKind == JsonValueKind.True;
            return (content.GetString()!, normalized, path!);
        }
        throw new InvalidDataException($"'{path}': {key} is neither a string nor an object with a string \"content\".");
    }

    private static int ReadModelMaxLength(JsonElement? config, string? path)
    {
        if (config is not { } root)
            throw new InvalidDataException("No tokenizer_config.json given, so model_max_length is unknown.");
        if (root.TryGetProperty("model_max_length", out var value)
            && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int length) && length >= 2)
            return length;
        throw new InvalidDataException($"'{path}' has no model_max_length that is a whole number of at least 2.");
    }

    private static JsonElement ReadJsonObject(string path)
    {
        var root = ReadJson<JsonElement>(path);
        return root.ValueKind == JsonValueKind.Object
            ? root
            : throw new InvalidDataException($"'{path}' holds a JSON {root.ValueKind} where an object was expected.");
    }

    private static T ReadJson<T>(string path)
    {
        RequireFile(path);
        using var stream = File.OpenRead(path);
        try
        {
            return JsonSerializer.Deserialize<T>(stream, JsonOptions)
                ?? throw new InvalidDataException($"'{path}' holds null.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is malformed at line {e.LineNumber + 1}: {e.Message}", e);
        }
    }

    private static void RequireFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"Tokenizer file '{path}' does not exist.", path);
    }

    private enum CharKind { Whitespace, Letter, Digit, Other }

    private sealed record AddedToken(int Id, string Content, bool Normalized, bool Special);

    private sealed record TokenizerDefinition(AddedToken[] AddedTokens);
}
