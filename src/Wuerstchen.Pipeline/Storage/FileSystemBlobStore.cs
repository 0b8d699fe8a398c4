using System.IO.Enumeration;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Wuerstchen.Pipeline.Storage;

/// <summary>
/// Blobs as files under a root folder (<c>generations/abc/image.png</c> is <c>{root}/generations/abc/image.png</c>),
/// for local runs and tests. Content type and metadata live in a JSON sidecar, <c>{root}/.wuerstchen/meta/{name}</c>.
/// Every write goes to a hidden temp file in the target's folder, is flushed to disk and then renamed over the target,
/// so readers see the old file or the new one. Sidecars carry the ETag of the content they describe and are ignored
/// when it no longer matches (another process replaced the content, or a writer died between the two renames).
/// </summary>
public sealed partial class FileSystemBlobStore : IBlobStore
{
    private const string TempPrefix = BlobNames.ReservedPrefix + "-tmp-";
    private const int CopyBufferSize = 1 << 20;
    private const int EExist = 17;

    private readonly string _root;
    private readonly string _metaRoot;
    private readonly ILogger _logger;

    // Within one process the two renames of a write (content, then sidecar) and the reads of both happen under a lock
    // per name (striped), so in-process readers never pair one write's content with another's metadata.
    private readonly Lock[] _stripes = Enumerable.Range(0, 64).Select(_ => new Lock()).ToArray();

    public FileSystemBlobStore(string rootPath, ILogger<FileSystemBlobStore>? logger = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(rootPath);
        _root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(rootPath));
        _metaRoot = Path.Combine(_root, BlobNames.ReservedPrefix, "meta");
        _logger = logger ?? NullLogger<FileSystemBlobStore>.Instance;
        Directory.CreateDirectory(_root);
    }

    public string Description => _root;

    public Task<bool> ExistsAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = BlobPath(name);
        cancellationToken.ThrowIfCancellationRequested();
        return Task.FromResult(File.Exists(path));
    }

    public Task<BlobItemInfo?> GetInfoAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = BlobPath(name);
        cancellationToken.ThrowIfCancellationRequested();
        lock (Stripe(name))
        {
            return Task.FromResult(ReadInfo(name, path));
        }
    }

    public async Task WriteAsync(string name, Stream content, BlobWriteOptions? options = null, CancellationToken cancellationToken = default)
    {
        var path = BlobPath(name);
        ArgumentNullException.ThrowIfNull(content);
        options ??= new BlobWriteOptions();
        BlobNames.ValidateMetadata(options.Metadata, name);

        var folder = Path.GetDirectoryName(path)!;
        CreateFolder(folder, name);
        var temp = TempPath(folder);
        try
        {
            long size;
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.Asynchronous);
            await using (stream.ConfigureAwait(false))
            {
                await content.CopyToAsync(stream, CopyBufferSize, cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
                size = stream.Length;
            }

            // File systems stamp writes with a coarse clock (a few milliseconds); a precise time keeps the ETags of two
            // quick same-size writes apart. Read back, as the file system may round it.
            File.SetLastWriteTimeUtc(temp, DateTime.UtcNow);
            var lastModified = File.GetLastWriteTimeUtc(temp);
            var sidecar = new Sidecar(ETagOf(lastModified, size), options.ContentType, options.Metadata);
            cancellationToken.ThrowIfCancellationRequested();

            lock (Stripe(name))
            {
                if (options.Overwrite)
                {
                    File.Move(temp, path, overwrite: true);
                }
                else
                {
                    MoveNoReplace(temp, path, name);
                }

                WriteSidecar(name, sidecar);
            }

            LogWrote(name, size, _root);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    public Task<Stream> OpenReadAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = BlobPath(name);
        cancellationToken.ThrowIfCancellationRequested();
        try
        {
            // Writers never touch an existing file (they rename a new one over it), so sharing everything is safe.
            Stream stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete,
                CopyBufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan);
            return Task.FromResult(stream);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException
                                   || (e is UnauthorizedAccessException && Directory.Exists(path)))
        {
            throw new BlobNotFoundException(_root, name);
        }
    }

    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken = default)
    {
        var path = BlobPath(name);
        cancellationToken.ThrowIfCancellationRequested();
        var folder = Path.GetDirectoryName(path)!;
        var doomed = TempPath(folder);
        lock (Stripe(name))
        {
            // Renaming first tells exactly whether this call removed the blob, even against a concurrent delete.
            try
            {
                File.Move(path, doomed, overwrite: false);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                return Task.FromResult(false);
            }

            File.Delete(doomed);
            DeleteIfPresent(SidecarPath(name));
        }

        LogDeleted(name, _root);
        return Task.FromResult(true);
    }

    public IAsyncEnumerable<BlobItemInfo> ListAsync(string prefix, CancellationToken cancellationToken = default)
    {
        BlobNames.ValidatePrefix(prefix);
        return List(prefix, cancellationToken).ToAsyncEnumerable();
    }

    private IEnumerable<BlobItemInfo> List(string prefix, CancellationToken cancellationToken) => Infos(Names(prefix), cancellationToken);

    /// <summary>A page of names is read from the folder tree; only the page's blobs have their details read.</summary>
    public Task<BlobListPage> ListPageAsync(string prefix, int pageSize, string? continuationToken, CancellationToken cancellationToken = default)
    {
        BlobNames.ValidatePrefix(prefix);
        ArgumentOutOfRangeException.ThrowIfLessThan(pageSize, 1);
        var names = Names(prefix);
        int start = 0;
        if (!string.IsNullOrEmpty(continuationToken))
        {
            int found = names.BinarySearch(continuationToken, StringComparer.Ordinal);
            start = found >= 0 ? found + 1 : ~found;
        }
        var page = names.Skip(start).Take(pageSize).ToList();
        var items = Infos(page, cancellationToken).ToArray();
        string? next = start + page.Count < names.Count && page.Count > 0 ? page[^1] : null;
        return Task.FromResult(new BlobListPage(items, next));
    }

    private List<string> Names(string prefix)
    {
        var lastSlash = prefix.LastIndexOf('/');
        var start = lastSlash < 0 ? _root : Path.Combine(_root, prefix[..lastSlash]);
        if (!Directory.Exists(start))
        {
            return [];
        }

        var options = new EnumerationOptions
        {
            RecurseSubdirectories = true,
            // Unix reports dot files as hidden; a blob may be called '.env'. The store's own files are skipped by name.
            AttributesToSkip = 0,
            IgnoreInaccessible = false,
        };
        var root = _root;
        return new FileSystemEnumerable<string>(start,
            (ref entry) => Path.GetRelativePath(root, entry.ToFullPath()).Replace(Path.DirectorySeparatorChar, '/'),
            options)
        {
            ShouldIncludePredicate = (ref entry) => !entry.IsDirectory && !entry.FileName.StartsWith(BlobNames.ReservedPrefix),
            ShouldRecursePredicate = (ref entry) => !entry.FileName.StartsWith(BlobNames.ReservedPrefix),
        }
            .Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    private IEnumerable<BlobItemInfo> Infos(IEnumerable<string> names, CancellationToken cancellationToken)
    {
        foreach (var name in names)
        {
            cancellationToken.ThrowIfCancellationRequested();
            BlobItemInfo? info;
            lock (Stripe(name))
            {
                info = ReadInfo(name, BlobPath(name));
            }

            // Deleted since the folder was read.
            if (info is not null)
            {
                yield return info;
            }
        }
    }

    public Task<Uri?> GetReadUriAsync(string name, TimeSpan lifetime, CancellationToken cancellationToken = default)
    {
        BlobNames.Validate(name);
        BlobNames.ValidateLifetime(lifetime);
        return Task.FromResult<Uri?>(null);
    }

    private string BlobPath(string name)
    {
        BlobNames.Validate(name);
        var path = Path.GetFullPath(Path.Combine(_root, name));
        if (!path.StartsWith(_root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            throw new ArgumentException($"Blob name '{name}' is not valid: it leads outside {_root}.", nameof(name));
        }

        return path;
    }

    /// <summary>
    /// The metadata tree mirrors the blob tree name for name, so it can hold a sidecar wherever the blob tree holds a
    /// blob (a suffix could clash: blob 'a' with blob 'a.json/b').
    /// </summary>
    private string SidecarPath(string name) => Path.Combine(_metaRoot, name);

    private static string TempPath(string folder) => Path.Combine(folder, TempPrefix + Guid.NewGuid().ToString("N"));

    private Lock Stripe(string name) => _stripes[(uint)StringComparer.Ordinal.GetHashCode(name) % (uint)_stripes.Length];

    private static string ETagOf(DateTime lastWriteUtc, long size) => $"\"{lastWriteUtc.Ticks:x}-{size:x}\"";

    private BlobItemInfo? ReadInfo(string name, string path)
    {
        var file = new FileInfo(path);
        if (!file.Exists)
        {
            return null;
        }

        var etag = ETagOf(file.LastWriteTimeUtc, file.Length);
        var sidecar = ReadSidecar(name);
        if (sidecar?.ETag != etag)
        {
            sidecar = null;
        }

        return new BlobItemInfo(name, file.Length, sidecar?.ContentType,
            sidecar?.Metadata ?? new Dictionary<string, string>(), new DateTimeOffset(file.LastWriteTimeUtc), etag);
    }

    private Sidecar? ReadSidecar(string name)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(SidecarPath(name)), SidecarJsonContext.Default.Sidecar);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
        catch (JsonException e)
        {
            LogBadSidecar(e, name, _root);
            return null;
        }
    }

    private void WriteSidecar(string name, Sidecar sidecar)
    {
        var path = SidecarPath(name);
        var folder = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(folder);
        var temp = TempPath(folder);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                JsonSerializer.Serialize(stream, sidecar, SidecarJsonContext.Default.Sidecar);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static void DeleteIfPresent(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private void CreateFolder(string folder, string name)
    {
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (IOException e)
        {
            throw new IOException($"Cannot write blob '{name}' in {_root}: a blob holds the place of one of its folders.", e);
        }
    }

    /// <summary>
    /// Publishes <paramref name="temp"/> as <paramref name="path"/> only if nothing is there, atomically. On Unix
    /// <c>File.Move(overwrite: false)</c> checks and then renames, which a concurrent writer can slip between; link(2)
    /// fails with EEXIST instead.
    /// </summary>
    private void MoveNoReplace(string temp, string path, string name)
    {
        if (OperatingSystem.IsWindows())
        {
            try
            {
                File.Move(temp, path, overwrite: false);
                return;
            }
            catch (IOException) when (File.Exists(path))
            {
                throw new BlobAlreadyExistsException(_root, name);
            }
        }

        if (Link(temp, path) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EExist)
            {
                throw new BlobAlreadyExistsException(_root, name);
            }

            throw new IOException($"Cannot write blob '{name}' in {_root}: link failed ({Marshal.GetPInvokeErrorMessage(errno)}).");
        }
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string existingPath, string newPath);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Wrote blob {Name} ({Size} bytes) in {Store}")]
    private partial void LogWrote(string name, long size, string store);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Deleted blob {Name} in {Store}")]
    private partial void LogDeleted(string name, string store);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Ignoring the unreadable metadata sidecar of blob {Name} in {Store}")]
    private partial void LogBadSidecar(Exception exception, string name, string store);

    internal sealed record Sidecar(string ETag, string? ContentType, IReadOnlyDictionary<string, string>? Metadata);

    [JsonSerializable(typeof(Sidecar))]
    [JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
    internal sealed partial class SidecarJsonContext : JsonSerializerContext;
}
