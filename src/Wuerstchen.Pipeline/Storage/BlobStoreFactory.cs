using Azure.Core;
using Azure.Identity;
using Azure.Storage.Blobs;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Wuerstchen.Pipeline.Storage;

public static class BlobStoreFactory
{
    /// <summary>The store <paramref name="options"/> describe; <see cref="ArgumentException"/> listing every problem when they are not valid.</summary>
    public static IBlobStore Create(StorageOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException($"Storage options are not valid: {string.Join(" ", errors)}", nameof(options));
        }

        loggerFactory ??= NullLoggerFactory.Instance;
        if (options.Kind == StorageKind.FileSystem)
        {
            return new FileSystemBlobStore(options.RootPath!, loggerFactory.CreateLogger<FileSystemBlobStore>());
        }

        var service = string.IsNullOrWhiteSpace(options.ConnectionString)
            ? new BlobServiceClient(new Uri(options.ServiceUri!), Credential(options))
            : new BlobServiceClient(options.ConnectionString);
        return new AzureBlobStore(service.GetBlobContainerClient(options.Container), logger: loggerFactory.CreateLogger<AzureBlobStore>());
    }

    private static TokenCredential Credential(StorageOptions options) =>
        string.IsNullOrWhiteSpace(options.ManagedIdentityClientId)
            ? new DefaultAzureCredential()
            : new ManagedIdentityCredential(ManagedIdentityId.FromUserAssignedClientId(options.ManagedIdentityClientId));
}
