using Microsoft.Extensions.Logging;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>The Hub client's log messages, with structured fields. No message carries a header or the token.</summary>
internal static partial class HubLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "Listed {RepoId} at {Revision}: commit {Commit}, {FileCount} files, {SelectedCount} needed")]
    public static partial void Listed(ILogger logger, string repoId, string revision, string commit, int fileCount, int selectedCount);

    [LoggerMessage(Level = LogLevel.Information, Message = "Downloading {Path} of {RepoId} ({Size} bytes, from byte {Offset})")]
    public static partial void Downloading(ILogger logger, string repoId, string path, long size, long offset);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Download of {Path} of {RepoId} interrupted at {Bytes} of {Size} bytes (try {Attempt} of {MaxRetries}): {Reason}; resuming")]
    public static partial void DownloadInterrupted(ILogger logger, string repoId, string path, long bytes, long size, int attempt, int maxRetries, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The server ignored the range request for {Path} of {RepoId} from byte {Offset}; downloading it from the start")]
    public static partial void RangeIgnored(ILogger logger, string repoId, string path, long offset);

    [LoggerMessage(Level = LogLevel.Information, Message = "Waiting for another download of {Path} of {RepoId} (lock {LockPath})")]
    public static partial void WaitingForLock(ILogger logger, string repoId, string path, string lockPath);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{RepoId} has no {Variant} weights in {Folder}; taking the full weights there")]
    public static partial void VariantMissing(ILogger logger, string repoId, string variant, string folder);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Symlinks are refused in {CacheDirectory}; snapshot files are copies of their blobs")]
    public static partial void SymlinksUnsupported(ILogger logger, string cacheDirectory);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The Hub is unreachable ({Reason}); using the cached snapshot {Commit} of {RepoId} at {Revision}")]
    public static partial void UsingCacheAfterFailure(ILogger logger, string repoId, string revision, string commit, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "{RepoId} at {Revision} is snapshot {Commit} in {Directory}")]
    public static partial void SnapshotReady(ILogger logger, string repoId, string revision, string commit, string directory);
}
