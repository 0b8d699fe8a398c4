using System.Buffers;
using TorchSharp;

namespace Wuerstchen.Models.IO;

/// <summary>Writes tensors in the safetensors format: header padded to 8 bytes, tensors sorted by name, optional metadata.</summary>
public static class SafetensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> to <paramref name="path"/> atomically: the bytes go to a temporary file in the
    /// same folder, are flushed to disk, and only then replace the target, so a reader never sees half a file.
    /// </summary>
    public static void Save(string path, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        string fullPath = Path.GetFullPath(path);
        string directory = Path.GetDirectoryName(fullPath)!;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(fullPath)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Write(stream, tensors, metadata);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporary, fullPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary))
                File.Delete(temporary);
        }
    }

    /// <summary>Writes the file's bytes to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var entries = Layout(tensors);
        byte[] header = SafetensorsHeader.Serialize(entries.Select(e => e.Info), metadata);
        stream.Write(BitConverter.GetBytes((ulong)header.Length));
        stream.Write(header);
        foreach (var (info, tensor) in entries)
        {
            using var scope = torch.NewDisposeScope();
            var contiguous = tensor.detach().cpu().contiguous();
            stream.Write(contiguous.bytes);
        }
    }

    /// <summary>Writes the file's bytes to <paramref name="stream"/> asynchronously, staging each tensor through a pooled buffer.</summary>
    public static async Task WriteAsync(Stream stream, IReadOnlyDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancellationToken = default)
    {
        var entries = Layout(tensors);
        byte[] header = SafetensorsHeader.Serialize(entries.Select(e => e.Info), metadata);
        await stream.WriteAsync(BitConverter.GetBytes((ulong)header.Length), cancellationToken).ConfigureAwait(false);
        await stream.WriteAsync(header, cancellationToken).ConfigureAwait(false);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            foreach (var (info, tensor) in entries)
            {
                using var contiguous = tensor.detach().cpu().contiguous();
                for (long offset = 0; offset < info.ByteLength; offset += buffer.Length)
                {
                    int count = (int)Math.Min(buffer.Length, info.ByteLength - offset);
                    CopyBytes(contiguous, offset, buffer.AsSpan(0, count));
                    await stream.WriteAsync(buffer.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static void CopyBytes(torch.Tensor contiguous, long offset, Span<byte> destination)
    {
        using var flat = contiguous.view(-1);
        int elementSize = SafetensorsDType.ElementSize(contiguous.dtype);
        using var chunk = flat.narrow(0, offset / elementSize, destination.Length / elementSize);
        chunk.bytes.CopyTo(destination);
    }

    private static List<(SafetensorsTensorInfo Info, torch.Tensor Tensor)> Layout(IReadOnlyDictionary<string, torch.Tensor> tensors)
    {
        var entries = new List<(SafetensorsTensorInfo, torch.Tensor)>(tensors.Count);
        long offset = 0;
        foreach (var (name, tensor) in tensors.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            if (string.IsNullOrEmpty(name) || name == SafetensorsHeader.MetadataKey)
                throw new ArgumentException($"'{name}' cannot be used as a tensor name in a safetensors file.", nameof(tensors));
            string dtype = SafetensorsDType.NameOf(tensor.dtype);
            int elementSize = SafetensorsDType.ElementSize(tensor.dtype);
            long length = tensor.numel() * elementSize;
            entries.Add((new SafetensorsTensorInfo(name, dtype, tensor.dtype, elementSize, tensor.shape, offset, offset + length), tensor));
            offset += length;
        }
        return entries;
    }
}
