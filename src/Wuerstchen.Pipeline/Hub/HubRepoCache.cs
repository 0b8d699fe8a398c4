using System.Text.RegularExpressions;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>
/// One model repository's folder in the Hugging Face cache layout, as <c>huggingface_hub</c> writes it:
/// <c>models--{owner}--{name}/blobs/{etag}</c> (file contents by ETag), <c>snapshots/{commit}/{path}</c> (relative
/// symlinks to the blobs, or copies where symlinks fail), <c>refs/{revision}</c> (the commit a branch or tag resolved
/// to), and the lock files in <c>.locks/models--{owner}--{name}/{etag}.lock</c>.
/// </summary>
internal sealed partial class HubRepoCache
{
    public HubRepoCache(string cacheDirectory, string repoId)
    {
        CacheDirectory = Path.GetFullPath(cacheDirectory);
        FolderName = "models--" + repoId.Replace("/", "--", StringComparison.Ordinal);
        RepoFolder = Path.Combine(CacheDirectory, FolderName);
    }

    public string CacheDirectory { get; }

    public string FolderName { get; }

    public string RepoFolder { get; }

    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);

    public string IncompletePath(string etag) => BlobPath(etag) + ".incomplete";

    public string LockPath(string etag) => Path.Combine(CacheDirectory, ".locks", FolderName, etag + ".lock");

    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);

    public string PointerPath(string commit, string repoPath) => Path.Combine(SnapshotFolder(commit), repoPath.Replace('/', Path.DirectorySeparatorChar));

    private string RefPath(string revision) => Path.Combine(RepoFolder, "refs", revision.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>The cached commit of <paramref name="revision"/>: the revision itself when it is a cached commit, else what <c>refs/</c> records.</summary>
    public string? ResolveCommit(string revision)
    {
        if (IsCommitHash(revision) && Directory.Exists(SnapshotFolder(revision)))
            return revision;
        string refPath = RefPath(revision);
        if (!File.Exists(refPath))
            return null;
        string commit = File.ReadAllText(refPath).Trim();
        return IsCommitHash(commit) ? commit : null;
    }

    public async Task WriteRefAsync(string revision, string commit, CancellationToken cancellationToken)
    {
        if (revision == commit)
            return;
        string refPath = RefPath(revision);
        Directory.CreateDirectory(Path.GetDirectoryName(refPath)!);
        string temporary = $"{refPath}.{Guid.NewGuid():N}.tmp";
        await File.WriteAllTextAsync(temporary, commit, cancellationToken).ConfigureAwait(false);
        File.Move(temporary, refPath, overwrite: true);
    }

    /// <summary>
    /// Points <paramref name="pointerPath"/> at <paramref name="blobPath"/> with a relative symlink, or a copy where the file
    /// system refuses symlinks; either appears atomically. Returns false when it had to copy.
    /// </summary>
    public static bool LinkPointer(string blobPath, string pointerPath)
    {
        string directory = Path.GetDirectoryName(pointerPath)!;
        Directory.CreateDirectory(directory);
        string temporary = Path.Combine(directory, $".{Path.GetFileName(pointerPath)}.{Guid.NewGuid():N}.tmp");
        bool linked = true;
        try
        {
            try
            {
                File.CreateSymbolicLink(temporary, Path.GetRelativePath(directory, blobPath));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
            {
                File.Copy(blobPath, temporary, overwrite: true);
                linked = false;
            }
            File.Move(temporary, pointerPath, overwrite: true);
        }
        finally
        {
            File.Delete(temporary); // no-op once moved
        }
        return linked;
    }

    /// <summary>Whether a snapshot file is usable: present, and not a symlink whose blob is gone.</summary>
    public static bool IsPresent(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is null)
            return info.Exists;
        return info.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true };
    }

    public static bool IsCommitHash(string value) => CommitPattern().IsMatch(value);

    /// <summary>
    /// Fails unless <paramref name="repoId"/> is <c>owner/name</c> and <paramref name="revision"/> is a branch, tag or commit
    /// name that stays inside <c>refs/</c>.
    /// </summary>
    public static void Validate(string repoId, string revision)
    {
        if (!IsRepoId(repoId))
            throw new ArgumentException($"'{repoId}' is not a repository id of the form owner/name.", nameof(repoId));
        if (!IsValidRevision(revision))
            throw new ArgumentException($"'{revision}' is not a valid revision (a branch, tag or commit).", nameof(revision));
    }

    public static bool IsRepoId(string repoId) => RepoIdPattern().IsMatch(repoId) && !repoId.Contains("..", StringComparison.Ordinal);

    public static bool IsValidRevision(string revision) =>
        revision.Length <= 255 && RevisionPattern().IsMatch(revision) && revision.Split('/').All(s => s is not ("" or "." or ".."));

    /// <summary>Every <c>refs/{revision}</c> of a cached repository folder that names a commit, by revision.</summary>
    public static IReadOnlyList<(string Revision, string Commit)> Refs(string repositoryFolder)
    {
        string refs = Path.Combine(repositoryFolder, "refs");
        if (!Directory.Exists(refs))
            return [];
        var found = new List<(string, string)>();
        foreach (string file in Directory.EnumerateFiles(refs, "*", SearchOption.AllDirectories))
        {
            string revision = Path.GetRelativePath(refs, file).Replace(Path.DirectorySeparatorChar, '/');
            if (!IsValidRevision(revision) || revision.EndsWith(".tmp", StringComparison.Ordinal))
                continue;
            string commit;
            try
            {
                commit = File.ReadAllText(file).Trim();
            }
            catch (IOException)
            {
                continue;
            }
            if (IsCommitHash(commit))
                found.Add((revision, commit));
        }
        return found.OrderBy(r => r.Item1 == "main" ? "" : r.Item1, StringComparer.Ordinal).ToArray();
    }

    /// <summary>Whether a repository path from the Hub is safe to place under a snapshot folder.</summary>
    public static bool IsSafeRepoPath(string path) =>
        path.Length > 0 && !path.StartsWith('/') && !path.Contains('\\') && path.Split('/').All(s => s is not ("" or "." or ".."));

    /// <summary>Whether an ETag can name a blob file.</summary>
    public static bool IsSafeEtag(string etag) => EtagPattern().IsMatch(etag);

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_.\-/]+$")]
    private static partial Regex RevisionPattern();

    [GeneratedRegex(@"^[A-Za-z0-9_\-]+$")]
    private static partial Regex EtagPattern();
}
