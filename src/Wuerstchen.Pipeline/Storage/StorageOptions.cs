using Azure.Storage.Blobs;

namespace Wuerstchen.Pipeline.Storage;

public enum StorageKind
{
    /// <summary>A folder (<see cref="StorageOptions.RootPath"/>): local runs and tests.</summary>
    FileSystem,

    /// <summary>An Azure Blob Storage container, by connection string or by service URI and an Azure AD identity.</summary>
    AzureBlob,
}

/// <summary>Where the blob store points, bound from the configuration section <c>Wuerstchen:Storage</c>.</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Wuerstchen:Storage";

    public StorageKind? Kind { get; set; }

    /// <summary>The folder of a <see cref="StorageKind.FileSystem"/> store; created if missing.</summary>
    public string? RootPath { get; set; }

    /// <summary>An account connection string (<c>UseDevelopmentStorage=true</c> for Azurite); or use <see cref="ServiceUri"/>.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The account's blob endpoint (<c>https://{account}.blob.core.windows.net</c>), reached with an Azure AD identity.</summary>
    public string? ServiceUri { get; set; }

    /// <summary>The client ID of a user-assigned managed identity; without it <c>DefaultAzureCredential</c> chooses.</summary>
    public string? ManagedIdentityClientId { get; set; }

    public string Container { get; set; } = "wuerstchen";

    /// <summary>What is wrong with these options, one sentence per problem naming the setting; empty when they are usable.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        switch (Kind)
        {
            case null:
                errors.Add($"{SectionName}:Kind is required: {StorageKind.FileSystem} or {StorageKind.AzureBlob}.");
                break;
            case StorageKind.FileSystem:
                if (string.IsNullOrWhiteSpace(RootPath))
                {
                    errors.Add($"{SectionName}:RootPath is required when {SectionName}:Kind is {StorageKind.FileSystem}.");
                }

                break;
            case StorageKind.AzureBlob:
                ValidateAzure(errors);
                break;
            default:
                errors.Add($"{SectionName}:Kind '{Kind}' is not one of {StorageKind.FileSystem}, {StorageKind.AzureBlob}.");
                break;
        }

        return errors;
    }

    private void ValidateAzure(List<string> errors)
    {
        var hasConnectionString = !string.IsNullOrWhiteSpace(ConnectionString);
        var hasServiceUri = !string.IsNullOrWhiteSpace(ServiceUri);
        if (hasConnectionString == hasServiceUri)
        {
            errors.Add($"Set exactly one of {SectionName}:ConnectionString and {SectionName}:ServiceUri when {SectionName}:Kind is {StorageKind.AzureBlob}.");
        }

        if (hasConnectionString)
        {
            try
            {
                _ = new BlobServiceClient(ConnectionString);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                // The value is a secret: name the setting, never echo it.
                errors.Add($"{SectionName}:ConnectionString is not a valid storage connection string.");
            }

            if (!string.IsNullOrWhiteSpace(ManagedIdentityClientId))
            {
                errors.Add($"{SectionName}:ManagedIdentityClientId applies only with {SectionName}:ServiceUri, not with a connection string.");
            }
        }

        if (hasServiceUri
            && (!Uri.TryCreate(ServiceUri, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttps || uri.Query.Length > 0))
        {
            errors.Add($"{SectionName}:ServiceUri '{ServiceUri}' is not an https blob endpoint without a query (e.g. https://account.blob.core.windows.net).");
        }

        if (!string.IsNullOrWhiteSpace(ManagedIdentityClientId) && !Guid.TryParse(ManagedIdentityClientId, out _))
        {
            errors.Add($"{SectionName}:ManagedIdentityClientId '{ManagedIdentityClientId}' is not a client ID (a GUID).");
        }

        if (!IsContainerName(Container))
        {
            errors.Add($"{SectionName}:Container '{Container}' is not a valid container name "
                + "(3–63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit).");
        }
    }

    private static bool IsContainerName(string? name) =>
        name is { Length: >= 3 and <= 63 }
        && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')
        && name[0] != '-'
        && name[^1] != '-'
        && !name.Contains("--", StringComparison.Ordinal);
}
