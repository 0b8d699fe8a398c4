using TorchSharp;

namespace Wuerstchen.Models.IO;

/// <summary>
/// An open safetensors file. The header is read and validated on open; tensors are served as views of a
/// copy-on-write memory map of the file, so nothing is read until it is used and loading into a model costs
/// one copy. Tensors whose offset is not aligned to their element size are read into fresh memory instead.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private readonly Dictionary<torch.ScalarType, torch.Tensor> _maps = new();
    private readonly long _fileLength;
    private bool _disposed;

    private SafetensorsFile(string path, long fileLength, SafetensorsHeader header)
    {
        FilePath = path;
        _fileLength = fileLength;
        Header = header;
    }

    public string FilePath { get; }

    public SafetensorsHeader Header { get; }

    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors => Header.Tensors;

    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    public static SafetensorsFile Open(string path)
    {
        string fullPath = Path.GetFullPath(path);
        if (!File.Exists(fullPath))
            throw new FileNotFoundException($"Safetensors file '{fullPath}' does not exist.", fullPath);
        using var stream = new FileStream(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        var header = SafetensorsHeader.Read(stream, stream.Length, fullPath);
        return new SafetensorsFile(fullPath, stream.Length, header);
    }

    /// <summary>
    /// Reads every tensor of a safetensors image held in <paramref name="stream"/> (e.g. a downloaded blob) into fresh
    /// CPU memory, validating the header as <see cref="Open"/> does; <paramref name="description"/> names it in errors.
    /// </summary>
    public static (Dictionary<string, torch.Tensor> Tensors, IReadOnlyDictionary<string, string> Metadata) ReadAll(Stream stream, string description)
    {
        var header = SafetensorsHeader.Read(stream, stream.Length, description);
        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var info in header.Tensors.Values)
            {
                var tensor = torch.empty(info.Shape, info.ScalarType);
                tensors.Add(info.Name, tensor);
                if (info.ElementCount == 0)
                    continue;
                stream.Position = header.DataOffset + info.Begin;
                using var flat = tensor.view(-1);
                long chunkElements = (1L << 30) / info.ElementSize;
                for (long start = 0; start < info.ElementCount; start += chunkElements)
                {
                    using var chunk = flat.narrow(0, start, Math.Min(chunkElements, info.ElementCount - start));
                    stream.ReadExactly(chunk.bytes);
                }
            }
        }
        catch
        {
            foreach (var tensor in tensors.Values)
                tensor.Dispose();
            throw;
        }
        return (tensors, header.Metadata);
    }

    /// <summary>
    /// The tensor named <paramref name="name"/> on the CPU, converted to <paramref name="dtype"/> when given.
    /// The caller owns (and disposes) the returned tensor; writing to it never changes the file.
    /// </summary>
    public torch.Tensor Load(string name, torch.ScalarType? dtype = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!Header.Tensors.TryGetValue(name, out var info))
            throw new KeyNotFoundException($"Safetensors file '{FilePath}' has no tensor named '{name}'.");

        var tensor = Read(info);
        if (dtype is { } target && target != tensor.dtype)
        {
            var converted = tensor.to(target);
            tensor.Dispose();
            return converted;
        }
        return tensor;
    }

    /// <summary>Every tensor in the file, by name.</summary>
    public Dictionary<string, torch.Tensor> LoadAll(torch.ScalarType? dtype = null)
    {
        var result = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var name in Header.Tensors.Keys)
                result.Add(name, Load(name, dtype));
        }
        catch
        {
            foreach (var tensor in result.Values)
                tensor.Dispose();
            throw;
        }
        return result;
    }

    private torch.Tensor Read(SafetensorsTensorInfo info)
    {
        long absolute = Header.DataOffset + info.Begin;
        if (info.ElementCount == 0)
            return torch.empty(info.Shape, info.ScalarType);
        if (absolute % info.ElementSize == 0)
        {
            using var flat = Map(info).narrow(0, absolute / info.ElementSize, info.ElementCount);
            return flat.view(info.Shape);
        }
        return ReadCopy(info, absolute);
    }

    private torch.Tensor Map(SafetensorsTensorInfo info)
    {
        if (!_maps.TryGetValue(info.ScalarType, out var map))
        {
            map = torch.from_file(FilePath, shared: false, size: _fileLength / info.ElementSize, dtype: info.ScalarType);
            _maps.Add(info.ScalarType, map);
        }
        return map;
    }

    private torch.Tensor ReadCopy(SafetensorsTensorInfo info, long absolute)
    {
        const long chunkBytes = 1L << 30;
        var tensor = torch.empty(info.Shape, info.ScalarType);
        using var handle = File.OpenHandle(FilePath, FileMode.Open, FileAccess.Read, FileShare.Read);
        using var flat = tensor.view(-1);
        long chunkElements = chunkBytes / info.ElementSize;
        for (long start = 0; start < info.ElementCount; start += chunkElements)
        {
            using var chunk = flat.narrow(0, start, Math.Min(chunkElements, info.ElementCount - start));
            var destination = chunk.bytes;
            long offset = absolute + start * info.ElementSize;
            while (destination.Length > 0)
            {
                int read = RandomAccess.Read(handle, destination, offset);
                if (read == 0)
                    throw new SafetensorsFormatException(FilePath, info.Name, "the file ended before the tensor's bytes (truncated?).");
                destination = destination[read..];
                offset += read;
            }
        }
        return tensor;
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        foreach (var map in _maps.Values)
            map.Dispose();
        _maps.Clear();
    }
}
