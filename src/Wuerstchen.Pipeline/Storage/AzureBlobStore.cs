using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Azure;
using Azure.Storage;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Sas;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Wuerstchen.Pipeline.Storage;

/// <summary>
/// Blobs in one Azure Blob Storage container, created on the first write. Each write is one block blob commit (a
/// single Put Blob, or Put Block pieces and one Put Block List for large streams), so readers see the old blob or the
/// new one. Metadata values that HTTP headers cannot carry as they are (non-ASCII, control characters, edge spaces)
/// are stored percent-encoded behind a marker and decoded on read.
/// </summary>
/// <remarks>
/// Blobs above the SDK's single-upload size (256 MiB unless <see cref="StorageTransferOptions"/> say otherwise) are
/// uploaded as staged blocks. A blob's uncommitted blocks are shared by all its writers and dropped by any commit, so
/// when two such writes of one name race, the later one starts again from a seekable stream, or fails with an
/// <see cref="IOException"/> that leaves the blob as the other writer made it.
/// </remarks>
public sealed partial class AzureBlobStore : IBlobStore
{
    internal const string EncodedValueMarker = "~utf8~";

    // Allows for clocks that run a little ahead of the service's when a link must be valid at once.
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    // Each lost attempt means another writer committed; with this many writers racing, every one gets through.
    private const int MaxBlockUploadAttempts = 8;

    private readonly BlobContainerClient _container;
    private readonly StorageTransferOptions _transferOptions;
    private readonly ILogger _logger;
    private volatile bool _containerReady;
    private volatile UserDelegationKey? _delegationKey;

    /// <param name="container">The container; its credential decides how read links are signed (shared key or user delegation).</param>
    /// <param name="transferOptions">How large uploads are cut into blocks; the SDK's defaults when left out.</param>
    /// <param name="logger">Where container creation, writes and deletes are logged.</param>
    public AzureBlobStore(BlobContainerClient container, StorageTransferOptions transferOptions = default, ILogger<AzureBlobStore>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(container);
        _container = container;
        _transferOptions = transferOptions;
        _logger = logger ?? NullLogger<AzureBlobStore>.Instance;
        Description = container.Uri.GetLeftPart(UriPartial.Path);
    }

    public string Description { get; }

    public async Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        return (await blob.ExistsAsync(cancellationToken).ConfigureAwait(false)).Value;
    }

    public async Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        try
        {
            BlobProperties properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return new BlobItemInfo(name, properties.ContentLength, properties.ContentType, DecodeMetadata(properties.Metadata),
                properties.LastModified, properties.ETag.ToString("H"));
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    public async Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        ArgumentNullException.ThrowIfNull(content);
        options ??= new BlobWriteOptions();
        BlobNames.ValidateMetadata(options.Metadata, name);

        await EnsureContainerAsync(cancellationToken).ConfigureAwait(false);
        var upload = new BlobUploadOptions
        {
            HttpHeaders = new BlobHttpHeaders { ContentType = options.ContentType },
            Metadata = EncodeMetadata(options.Metadata),
            Conditions = options.Overwrite ? null : new BlobRequestConditions { IfNoneMatch = ETag.All },
            TransferOptions = _transferOptions,
        };
        var start = content.CanSeek ? content.Position : 0;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                BlobContentInfo written = await blob.UploadAsync(content, upload, cancellationToken).ConfigureAwait(false);
                LogWrote(name, Description, written.ETag.ToString("H"));
                return;
            }
            catch (RequestFailedException e) when (!options.Overwrite && (e.ErrorCode == BlobErrorCode.BlobAlreadyExists || e.Status == 412))
            {
                throw new BlobAlreadyExistsException(Description, name);
            }
            // A commit of the same blob by another writer discards every uncommitted block, this writer's too.
            catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.InvalidBlockList && content.CanSeek && attempt < MaxBlockUploadAttempts)
            {
                LogLostBlocks(name, Description, attempt);
                content.Position = start;
            }
            catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.InvalidBlockList)
            {
                throw new IOException(
                    $"Blob '{name}' in {Description} was not written: concurrent writes of it discarded the blocks this write had staged. "
                    + "Nothing of it was committed; write it again.", e);
            }
        }
    }

    public async Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        try
        {
            // Pinned to the ETag it opened: if the blob is replaced mid-read, reading fails instead of mixing versions.
            return await blob.OpenReadAsync(new BlobOpenReadOptions(allowModifications: false), cancellationToken).ConfigureAwait(false);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new BlobNotFoundException(Description, name);
        }
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        bool deleted = await blob.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: cancellationToken)
            .ConfigureAwait(false);
        if (deleted)
        {
            LogDeleted(name, Description);
        }

        return deleted;
    }

    public async IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        BlobNames.ValidatePrefix(prefix);
        var options = new GetBlobsOptions { Traits = BlobTraits.Metadata, Prefix = prefix.Length == 0 ? null : prefix };
        var items = _container.GetBlobsAsync(options, cancellationToken).GetAsyncEnumerator(cancellationToken);
        await using (items.ConfigureAwait(false))
        {
            while (true)
            {
                bool more;
                try
                {
                    more = await items.MoveNextAsync().ConfigureAwait(false);
                }
                catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.ContainerNotFound)
                {
                    // Nothing written yet.
                    more = false;
                }

                if (!more)
                {
                    yield break;
                }

                var item = items.Current;
                yield return new BlobItemInfo(item.Name, item.Properties.ContentLength ?? 0, item.Properties.ContentType,
                    DecodeMetadata(item.Metadata), item.Properties.LastModified ?? default, item.Properties.ETag?.ToString("H") ?? "");
            }
        }
    }

    /// <summary>One page through the service's own continuation marker: a deep page is one request, like the first.</summary>
    public async Task<BlobListPage> ListPageAsync(string prefix, int pageSize, string? continuationToken, CancellationToken cancellationToken = default)
    {
        BlobNames.ValidatePrefix(prefix);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var options = new GetBlobsOptions { Traits = BlobTraits.Metadata, Prefix = prefix.Length == 0 ? null : prefix };
        try
        {
            await foreach (var page in _container.GetBlobsAsync(options, cancellationToken)
                               .AsPages(string.IsNullOrEmpty(continuationToken) ? null : continuationToken, pageSize).ConfigureAwait(false))
            {
                var items = page.Values.Select(item => new BlobItemInfo(item.Name, item.Properties.ContentLength ?? 0, item.Properties.ContentType,
                    DecodeMetadata(item.Metadata), item.Properties.LastModified ?? default, item.Properties.ETag?.ToString("H") ?? "")).ToArray();
                return new BlobListPage(items, string.IsNullOrEmpty(page.ContinuationToken) ? null : page.ContinuationToken);
            }
        }
        catch (RequestFailedException e) when (e.ErrorCode == BlobErrorCode.ContainerNotFound)
        {
        }
        return new BlobListPage([], null);
    }

    /// <summary>
    /// A read-only SAS link to one blob: signed with the account key where the client has one, otherwise with a user
    /// delegation key (managed identity; needs a role that allows <c>generateUserDelegationKey</c>). Null when the client
    /// itself is authorized by a SAS, which can neither sign nor ask for a delegation key.
    /// </summary>
    public async Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        var blob = Blob(name);
        BlobNames.ValidateLifetime(lifetime);
        var now = DateTimeOffset.UtcNow;
        var sas = new BlobSasBuilder(BlobSasPermissions.Read, now + lifetime)
        {
            BlobContainerName = _container.Name,
            BlobName = name,
            Resource = "b",
            StartsOn = now - ClockSkew,
        };

        if (blob.CanGenerateSasUri)
        {
            return blob.GenerateSasUri(sas);
        }

        if (new BlobUriBuilder(_container.Uri).Sas is not null)
        {
            return null;
        }

        var key = await DelegationKeyAsync(sas.StartsOn, sas.ExpiresOn, cancellationToken).ConfigureAwait(false);
        return blob.GenerateUserDelegationSasUri(sas, key);
    }

    internal static string EncodeValue(string value)
    {
        var plain = value.Length > 0
            && value[0] != ' '
            && value[^1] != ' '
            && !value.StartsWith(EncodedValueMarker, StringComparison.Ordinal)
            && value.All(c => c is >= ' ' and <= '~');
        if (plain)
        {
            return value;
        }

        var encoded = new StringBuilder(EncodedValueMarker, EncodedValueMarker.Length + value.Length * 3);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            if (b is > (byte)' ' and <= (byte)'~' and not (byte)'%')
            {
                encoded.Append((char)b);
            }
            else
            {
                encoded.Append('%').Append(b.ToString("X2"));
            }
        }

        return encoded.ToString();
    }

    /// <summary>Undoes <see cref="EncodeValue"/>; values that are not in its form are returned as they are.</summary>
    internal static string DecodeValue(string value)
    {
        if (!value.StartsWith(EncodedValueMarker, StringComparison.Ordinal))
        {
            return value;
        }

        var text = value.AsSpan(EncodedValueMarker.Length);
        var bytes = new List<byte>(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '%')
            {
                bytes.Add((byte)text[i]);
            }
            else if (i + 2 < text.Length && byte.TryParse(text.Slice(i + 1, 2), NumberStyles.AllowHexSpecifier, null, out var b))
            {
                bytes.Add(b);
                i += 2;
            }
            else
            {
                return value;
            }
        }

        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private static Dictionary<string, string>? EncodeMetadata(IReadOnlyDictionary<string, string>? metadata) =>
        metadata?.ToDictionary(pair => pair.Key, pair => EncodeValue(pair.Value));

    private static Dictionary<string, string> DecodeMetadata(IDictionary<string, string>? metadata) =>
        metadata?.ToDictionary(pair => pair.Key, pair => DecodeValue(pair.Value)) ?? [];

    private BlobClient Blob(string name)
    {
        BlobNames.Validate(name);
        return _container.GetBlobClient(name);
    }

    private async Task EnsureContainerAsync(CancellationToken cancellationToken)
    {
        if (_containerReady)
        {
            return;
        }

        var created = await _container.CreateIfNotExistsAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        if (created is not null)
        {
            LogCreatedContainer(Description);
        }

        _containerReady = true;
    }

    /// <summary>One key serves every link that expires before it does; a new one is asked for when a link outlives it.</summary>
    private async Task<UserDelegationKey> DelegationKeyAsync(DateTimeOffset startsOn, DateTimeOffset expiresOn, CancellationToken cancellationToken)
    {
        var key = _delegationKey;
        if (key is not null && key.SignedStartsOn <= startsOn && key.SignedExpiresOn >= expiresOn)
        {
            return key;
        }

        var keyExpiresOn = expiresOn > startsOn + TimeSpan.FromDays(1) ? expiresOn : startsOn + TimeSpan.FromDays(1);
        key = await _container.GetParentBlobServiceClient()
            .GetUserDelegationKeyAsync(startsOn, keyExpiresOn, cancellationToken).ConfigureAwait(false);
        _delegationKey = key;
        return key;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Created container {Container}")]
    private partial void LogCreatedContainer(string container);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Wrote blob {Name} in {Container} (ETag {ETag})")]
    private partial void LogWrote(string name, string container, string etag);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Uploading blob {Name} to {Container} again (attempt {Attempt} lost its staged blocks to a concurrent write)")]
    private partial void LogLostBlocks(string name, string container, int attempt);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Deleted blob {Name} in {Container}")]
    private partial void LogDeleted(string name, string container);
}
