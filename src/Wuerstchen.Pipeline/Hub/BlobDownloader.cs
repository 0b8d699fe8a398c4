using System.Buffers;
using System.Net;
using System.Net.Http;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>
/// Brings one file's blob into the cache: downloads to <c>blobs/{etag}.incomplete</c>, resumes what is already there
/// with a <c>Range</c> request (after an interruption in this call or in an earlier one), verifies the whole file (LFS
/// files by SHA-256, which is their ETag; others by size), and only then renames it to <c>blobs/{etag}</c>. A lock file
/// per blob makes concurrent downloads of the same file, in this process or another, wait for each other.
/// </summary>
internal sealed class BlobDownloader
{
    private const int BufferSize = 1 << 20;
    private static readonly TimeSpan LockPollInterval = TimeSpan.FromMilliseconds(100);

    private readonly HubHttp _http;
    private readonly HubOptions _options;
    private readonly ILogger _logger;

    public BlobDownloader(HubHttp http, HubOptions options, ILogger logger)
    {
        _http = http;
        _options = options;
        _logger = logger;
    }

    /// <summary>Returns the blob's path once it is complete and verified.</summary>
    public async Task<string> EnsureBlobAsync(HubRepoCache cache, string repoId, RemoteFile file, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        string blob = cache.BlobPath(file.Etag);
        if (IsComplete(blob, file))
        {
            progress?.Report(new DownloadProgress(repoId, file.Path, file.Size, file.Size));
            return blob;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        await using var fileLock = await AcquireLockAsync(cache.LockPath(file.Etag), repoId, file.Path, cancellationToken).ConfigureAwait(false);
        if (IsComplete(blob, file))
        {
            progress?.Report(new DownloadProgress(repoId, file.Path, file.Size, file.Size));
            return blob;
        }

        string incomplete = cache.IncompletePath(file.Etag);
        for (int attempt = 0; ; attempt++)
        {
            long have = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
            try
            {
                await DownloadRestAsync(repoId, file, incomplete, have, progress, cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (Exception e) when (IsInterruption(e, cancellationToken))
            {
                long kept = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
                if (attempt >= _options.MaxRetries)
                    throw new HubRequestException(
                        $"The download of '{file.Path}' from {repoId} was interrupted after {kept} of {file.Size} bytes ({e.Message}); " +
                        $"the partial file '{incomplete}' is kept and the next download resumes it.", (e as HubRequestException)?.StatusCode, e);
                HubLog.DownloadInterrupted(_logger, repoId, file.Path, kept, file.Size, attempt + 1, _options.MaxRetries, e.Message);
                await Task.Delay(_options.RetryDelay, cancellationToken).ConfigureAwait(false);
            }
        }

        await VerifyAsync(repoId, file, incomplete, cancellationToken).ConfigureAwait(false);
        File.Move(incomplete, blob, overwrite: true);
        return blob;
    }

    private async Task DownloadRestAsync(string repoId, RemoteFile file, string incomplete, long have, IProgress<DownloadProgress>? progress, CancellationToken cancellationToken)
    {
        if (have > file.Size)
        {
            File.Delete(incomplete);
            have = 0;
        }
        if (have == file.Size)
            return;

        HubLog.Downloading(_logger, repoId, file.Path, file.Size, have);
        using var response = await _http.GetAsync(file.Url, have, $"'{file.Path}' in {repoId}", cancellationToken).ConfigureAwait(false);
        if (have > 0 && !ResumesAt(response, have))
        {
            HubLog.RangeIgnored(_logger, repoId, file.Path, have);
            have = 0;
        }
        progress?.Report(new DownloadProgress(repoId, file.Path, have, file.Size, Starting: true));

        await using var output = new FileStream(incomplete, have > 0 ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None, BufferSize, useAsync: true);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            using var stall = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            while (true)
            {
                stall.CancelAfter(_options.ReadTimeout);
                int read = await body.ReadAsync(buffer, stall.Token).ConfigureAwait(false);
                if (read == 0)
                    break;
                have += read;
                if (have > file.Size)
                {
                    output.Close();
                    File.Delete(incomplete);
                    throw new HubFileVerificationException(repoId, file.Path, "size", $"{file.Size} bytes", $"more than {file.Size} bytes");
                }
                await output.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                progress?.Report(new DownloadProgress(repoId, file.Path, have, file.Size));
            }
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            output.Flush(flushToDisk: true);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"no data for {_options.ReadTimeout.TotalSeconds:0.#} s", e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static bool ResumesAt(HttpResponseMessage response, long have) =>
        response.StatusCode == HttpStatusCode.PartialContent && response.Content.Headers.ContentRange is { From: { } from } && from == have;

    private static async Task VerifyAsync(string repoId, RemoteFile file, string incomplete, CancellationToken cancellationToken)
    {
        long length = new FileInfo(incomplete).Length;
        if (length != file.Size)
        {
            File.Delete(incomplete);
            throw new HubFileVerificationException(repoId, file.Path, "size", $"{file.Size} bytes", $"{length} bytes");
        }
        if (!file.IsLfs)
            return;

        string actual;
        await using (var stream = new FileStream(incomplete, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, useAsync: true))
            actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
        if (!string.Equals(actual, file.Etag, StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(incomplete);
            throw new HubFileVerificationException(repoId, file.Path, "SHA-256", file.Etag, actual);
        }
    }

    private static bool IsComplete(string blob, RemoteFile file) => File.Exists(blob) && new FileInfo(blob).Length == file.Size;

    /// <summary>Network failures and stalls, which a resumed request may get past; not verification failures or HTTP errors like 404.</summary>
    private static bool IsInterruption(Exception e, CancellationToken cancellationToken) => !cancellationToken.IsCancellationRequested && e switch
    {
        HubRequestException request => request.IsTransient,
        HttpRequestException or TimeoutException or HttpIOException => true,
        IOException { InnerException: SocketException } => true,
        _ => false,
    };

    private async Task<FileStream> AcquireLockAsync(string lockPath, string repoId, string path, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(lockPath)!);
        bool waiting = false;
        while (true)
        {
            try
            {
                // FileShare.None takes an exclusive advisory lock (flock) on Unix and a sharing lock on Windows.
                return new FileStream(lockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.Asynchronous);
            }
            catch (IOException) when (File.Exists(lockPath))
            {
                if (!waiting)
                    HubLog.WaitingForLock(_logger, repoId, path, lockPath);
                waiting = true;
                await Task.Delay(LockPollInterval, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
