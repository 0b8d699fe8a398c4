using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>The tensors of a .safetensors file as a reader of the format sees them (8-byte header length, JSON header, data), metadata aside.</summary>
public static class Safetensors
{
    /// <summary>Each tensor's dtype, shape and raw bytes, by name.</summary>
    public static IReadOnlyDictionary<string, (string Type, string Shape, byte[] Data)> Read(byte[] file)
    {
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(file);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(file, 8, (int)headerLength))!.AsObject();
        long dataStart = 8 + headerLength;
        var tensors = new Dictionary<string, (string, string, byte[])>(StringComparer.Ordinal);
        foreach (var (name, entry) in header)
        {
            if (name == "__metadata__")
                continue;
            var offsets = entry!["data_offsets"]!.AsArray().Select(o => o!.GetValue<long>()).ToArray();
            tensors[name] = (entry.Text("dtype"), entry["shape"]!.ToJsonString(), file[(int)(dataStart + offsets[0])..(int)(dataStart + offsets[1])]);
        }
        return tensors;
    }

    /// <summary>The names of the tensors whose dtype, shape or bytes differ between two files (or that only one has).</summary>
    public static IReadOnlyList<string> Differences(byte[] expected, byte[] actual)
    {
        var a = Read(expected);
        var b = Read(actual);
        return a.Keys.Union(b.Keys).Where(name => !a.TryGetValue(name, out var x) || !b.TryGetValue(name, out var y)
                                                  || x.Type != y.Type || x.Shape != y.Shape || !x.Data.AsSpan().SequenceEqual(y.Data)).Order().ToArray();
    }
}
