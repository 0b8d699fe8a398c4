using Microsoft.Extensions.Configuration;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Cli;

/// <summary>Blob names as the user can find them: a file path in a local store, the container and name in Azure.</summary>
public static class StoreLocation
{
    public static string Describe(IConfiguration configuration, string blobName)
    {
        var storage = CliConfiguration.Storage(configuration);
        return storage.Kind == StorageKind.FileSystem && storage.RootPath is { Length: > 0 } root
            ? Path.Combine(Path.GetFullPath(root), blobName.Replace('/', Path.DirectorySeparatorChar))
            : $"blob {blobName} in container {storage.Container}";
    }
}
