using System.Runtime.CompilerServices;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Training;

/// <summary>A file of a dataset: its name relative to the dataset ('/'-separated) and its size.</summary>
public sealed record DatasetFile(string Name, long Size);

/// <summary>The files of a dataset, wherever it lies.</summary>
public interface IDatasetSource
{
    string Description { get; }

    /// <summary>Every file, in name order.</summary>
    IAsyncEnumerable<DatasetFile> ListAsync(CancellationToken cancellationToken);

    Task<byte[]> ReadAsync(string name, CancellationToken cancellationToken);
}

public static class DatasetSources
{
    public static IDatasetSource Open(DatasetLocation location, IBlobStore store, TrainingOptions options)
    {
        if (location.Prefix is { } prefix)
            return new BlobDatasetSource(store, prefix.EndsWith('/') ? prefix : prefix + "/");
        string folder = ResolveFolder(location.Folder, options)
            ?? throw new DirectoryNotFoundException($"Dataset folder '{location.Folder}' is not a folder under {TrainingOptions.Section}:DatasetsRoot.");
        return new FolderDatasetSource(folder);
    }

    /// <summary>The full path of a dataset folder when it exists under the datasets root; null otherwise.</summary>
    public static string? ResolveFolder(string? folder, TrainingOptions options)
    {
        if (string.IsNullOrWhiteSpace(folder) || string.IsNullOrWhiteSpace(options.DatasetsRoot))
            return null;
        string root = Path.GetFullPath(options.DatasetsRoot);
        string full = Path.GetFullPath(Path.Combine(root, folder));
        string relative = Path.GetRelativePath(root, full);
        if (relative == ".." || relative.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) || Path.IsPathRooted(relative))
            return null;
        return Directory.Exists(full) ? full : null;
    }

    private sealed class BlobDatasetSource(IBlobStore store, string prefix) : IDatasetSource
    {
        public string Description => $"blobs '{prefix}' in {store.Description}";

        public async IAsyncEnumerable<DatasetFile> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            await foreach (var blob in store.ListAsync(prefix, cancellationToken).ConfigureAwait(false))
                yield return new DatasetFile(blob.Name[prefix.Length..], blob.Size);
        }

        public async Task<byte[]> ReadAsync(string name, CancellationToken cancellationToken)
        {
            await using var stream = await store.OpenReadAsync(prefix + name, cancellationToken).ConfigureAwait(false);
            using var buffer = new MemoryStream();
            await stream.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
    }

    private sealed class FolderDatasetSource(string root) : IDatasetSource
    {
        public string Description => $"folder '{root}'";

        public async IAsyncEnumerable<DatasetFile> ListAsync([EnumeratorCancellation] CancellationToken cancellationToken)
        {
            var files = Directory.EnumerateFiles(root, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.Hidden })
                .Select(path => new DatasetFile(Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/'), new FileInfo(path).Length))
                .OrderBy(f => f.Name, StringComparer.Ordinal)
                .ToList();
            foreach (var file in files)
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return file;
            }
            await Task.CompletedTask.ConfigureAwait(false);
        }

        public Task<byte[]> ReadAsync(string name, CancellationToken cancellationToken) =>
            File.ReadAllBytesAsync(Path.Combine(root, name.Replace('/', Path.DirectorySeparatorChar)), cancellationToken);
    }
}
