using TorchSharp;
using Wuerstchen.Models.IO;

namespace Wuerstchen.Models.Loading;

/// <summary>The tensors of one checkpoint, spread over one or more safetensors files, by key.</summary>
public sealed class CheckpointWeights : IDisposable
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _owner;

    private CheckpointWeights(List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> owner)
    {
        _files = files;
        _owner = owner;
    }

    public IReadOnlyCollection<string> Keys => _owner.Keys;

    public IReadOnlyList<string> FilePaths => _files.Select(f => f.FilePath).ToArray();

    public static CheckpointWeights Open(IEnumerable<string> paths)
    {
        var files = new List<SafetensorsFile>();
        var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (string path in paths)
            {
                var file = SafetensorsFile.Open(path);
                files.Add(file);
                foreach (string key in file.Tensors.Keys)
                {
                    if (owner.TryGetValue(key, out var first))
                        throw new SafetensorsFormatException(file.FilePath, key, $"the tensor is also in shard '{first.FilePath}'.");
                    owner.Add(key, file);
                }
            }
        }
        catch
        {
            foreach (var file in files)
                file.Dispose();
            throw;
        }
        return new CheckpointWeights(files, owner);
    }

    public SafetensorsTensorInfo Info(string key) => _owner[key].Tensors[key];

    public bool Contains(string key) => _owner.ContainsKey(key);

    /// <summary>The tensor stored under <paramref name="key"/>, as a memory-mapped view in the file's dtype; the caller disposes it.</summary>
    public torch.Tensor Load(string key, torch.ScalarType? dtype = null)
    {
        if (!_owner.TryGetValue(key, out var file))
            throw new KeyNotFoundException($"The checkpoint ({string.Join(", ", FilePaths)}) has no tensor '{key}'.");
        return file.Load(key, dtype);
    }

    public void Dispose()
    {
        foreach (var file in _files)
            file.Dispose();
        _files.Clear();
        _owner.Clear();
    }
}
