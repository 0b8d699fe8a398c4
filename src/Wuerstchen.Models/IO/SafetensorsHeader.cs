using System.Text.Json;
using TorchSharp;

namespace Wuerstchen.Models.IO;

/// <summary>Where one tensor lies in a safetensors file's data section.</summary>
public sealed record SafetensorsTensorInfo(string Name, string DType, torch.ScalarType ScalarType, int ElementSize, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;

    public long ElementCount => Shape.Aggregate(1L, (product, dim) => product * dim);
}

/// <summary>
/// The parsed and validated JSON header of a safetensors file: every tensor's dtype, shape and byte range,
/// and the optional string-to-string <c>__metadata__</c>.
/// </summary>
public sealed class SafetensorsHeader
{
    /// <summary>Headers above this size are refused before any allocation (the reference implementation uses 100 MB).</summary>
    public const long MaxHeaderBytes = 100L * 1024 * 1024;

    public const string MetadataKey = "__metadata__";

    private SafetensorsHeader(IReadOnlyDictionary<string, SafetensorsTensorInfo> tensors, IReadOnlyDictionary<string, string> metadata, long dataOffset)
    {
        Tensors = tensors;
        Metadata = metadata;
        DataOffset = dataOffset;
    }

    /// <summary>Tensors in file order (by their begin offset).</summary>
    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors { get; }

    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Absolute offset of the data section: 8 + header length.</summary>
    public long DataOffset { get; }

    /// <summary>Reads the 8-byte length prefix and the JSON header from <paramref name="stream"/> (positioned at the start of the file).</summary>
    public static SafetensorsHeader Read(Stream stream, long fileLength, string filePath)
    {
        if (fileLength < 8)
            throw new SafetensorsFormatException(filePath, null, $"the file is {fileLength} bytes long, shorter than the 8-byte header length prefix.");

        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        ulong headerLength = BitConverter.ToUInt64(prefix);
        if (headerLength > (ulong)MaxHeaderBytes)
            throw new SafetensorsFormatException(filePath, null, $"the header length {headerLength} exceeds the limit of {MaxHeaderBytes} bytes.");
        if ((long)headerLength > fileLength - 8)
            throw new SafetensorsFormatException(filePath, null, $"the header length {headerLength} runs past the end of the {fileLength}-byte file (truncated?).");

        var json = new byte[headerLength];
        stream.ReadExactly(json);
        return Parse(json, fileLength - 8 - (long)headerLength, filePath);
    }

    /// <summary>Parses and validates a header whose data section is <paramref name="dataLength"/> bytes long.</summary>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long dataLength, string filePath)
    {
        if (json.Length == 0 || json[0] != (byte)'{')
            throw new SafetensorsFormatException(filePath, null, "the header does not start with a JSON object.");
        if (!System.Text.Unicode.Utf8.IsValid(json))
            throw new SafetensorsFormatException(filePath, null, "the header is not valid UTF-8.");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new SafetensorsFormatException(filePath, null, $"the header is not valid JSON ({e.Message}).");
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(filePath, null, "the header is not a JSON object.");

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<SafetensorsTensorInfo>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new SafetensorsFormatException(filePath, property.Name, "the name appears twice in the header.");
                if (property.Name == MetadataKey)
                    ReadMetadata(property.Value, metadata, filePath);
                else
                    tensors.Add(ReadTensorInfo(property.Name, property.Value, dataLength, filePath));
            }

            tensors.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
            for (int i = 1; i < tensors.Count; i++)
            {
                if (tensors[i].Begin < tensors[i - 1].End)
                    throw new SafetensorsFormatException(filePath, tensors[i].Name,
                        $"its bytes [{tensors[i].Begin}, {tensors[i].End}) overlap those of '{tensors[i - 1].Name}' [{tensors[i - 1].Begin}, {tensors[i - 1].End}).");
            }

            var byName = new Dictionary<string, SafetensorsTensorInfo>(StringComparer.Ordinal);
            foreach (var tensor in tensors)
                byName.Add(tensor.Name, tensor);
            return new SafetensorsHeader(byName, metadata, 8 + json.Length);
        }
    }

    /// <summary>Serialises a header, padded with spaces so the data section starts on an 8-byte boundary.</summary>
    public static byte[] Serialize(IEnumerable<SafetensorsTensorInfo> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                writer.WriteStartObject(MetadataKey);
                foreach (var (key, value) in metadata.OrderBy(m => m.Key, StringComparer.Ordinal))
                    writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            foreach (var tensor in tensors)
            {
                writer.WriteStartObject(tensor.Name);
                writer.WriteString("dtype", tensor.DType);
                writer.WriteStartArray("shape");
                foreach (long dim in tensor.Shape)
                    writer.WriteNumberValue(dim);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(tensor.Begin);
                writer.WriteNumberValue(tensor.End);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++)
            buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    private static void ReadMetadata(JsonElement element, Dictionary<string, string> metadata, string filePath)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(filePath, null, $"'{MetadataKey}' must be an object of strings.");
        foreach (var entry in element.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsFormatException(filePath, null, $"'{MetadataKey}' entry '{entry.Name}' is not a string.");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static SafetensorsTensorInfo ReadTensorInfo(string name, JsonElement element, long dataLength, string filePath)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(filePath, name, "the entry is not a JSON object.");
        if (!element.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(filePath, name, "'dtype' is missing or not a string.");
        string dtype = dtypeElement.GetString()!;
        if (!SafetensorsDType.TryParse(dtype, out var scalarType, out int elementSize))
            throw new SafetensorsFormatException(filePath, name, $"unknown dtype '{dtype}' (known: {string.Join(", ", SafetensorsDType.Names)}).");

        long[] shape = ReadIntegers(element, "shape", name, filePath);
        if (shape.Any(dim => dim < 0))
            throw new SafetensorsFormatException(filePath, name, $"negative dimension in shape [{string.Join(", ", shape)}].");
        long elements = ElementsOf(shape, elementSize)
            ?? throw new SafetensorsFormatException(filePath, name,
                $"shape [{string.Join(", ", shape)}] × {dtype} holds more bytes than a file can ({long.MaxValue}).");

        long[] offsets = ReadIntegers(element, "data_offsets", name, filePath);
        if (offsets.Length != 2)
            throw new SafetensorsFormatException(filePath, name, "'data_offsets' must hold exactly two numbers [begin, end].");
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin)
            throw new SafetensorsFormatException(filePath, name, $"invalid data_offsets [{begin}, {end}].");
        if (end > dataLength)
            throw new SafetensorsFormatException(filePath, name, $"data_offsets [{begin}, {end}] run past the end of the {dataLength}-byte data section (truncated file?).");
        long expected = elements * elementSize;
        if (end - begin != expected)
            throw new SafetensorsFormatException(filePath, name,
                $"shape [{string.Join(", ", shape)}] × {dtype} needs {expected} bytes but data_offsets [{begin}, {end}] span {end - begin}.");

        return new SafetensorsTensorInfo(name, dtype, scalarType, elementSize, shape, begin, end);
    }

    /// <summary>The element count of <paramref name="shape"/>, or null when it or its byte size does not fit in a long.</summary>
    private static long? ElementsOf(long[] shape, int elementSize)
    {
        if (shape.Contains(0))
            return 0;
        long elements = 1;
        foreach (long dim in shape)
        {
            if (elements > long.MaxValue / elementSize / dim)
                return null;
            elements *= dim;
        }
        return elements;
    }

    private static long[] ReadIntegers(JsonElement element, string property, string tensorName, string filePath)
    {
        if (!element.TryGetProperty(property, out var array) || array.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(filePath, tensorName, $"'{property}' is missing or not an array.");
        var values = new long[array.GetArrayLength()];
        int i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out values[i++]))
                throw new SafetensorsFormatException(filePath, tensorName, $"'{property}' holds a value that is not a whole number: {item.GetRawText()}.");
        }
        return values;
    }
}
