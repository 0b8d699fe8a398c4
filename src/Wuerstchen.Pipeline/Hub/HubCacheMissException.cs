namespace Wuerstchen.Pipeline.Hub;

/// <summary>
/// A repository revision that had to come from the cache (offline, or the endpoint unreachable) but is not complete
/// there; lists what is missing.
/// </summary>
public sealed class HubCacheMissException : Exception
{
    public HubCacheMissException(string repoId, string revision, string repoFolder, IReadOnlyList<string> missingFiles, string reason, Exception? inner = null)
        : base($"{repoId} at revision '{revision}' is not complete in the cache '{repoFolder}', and {reason}. Missing: {string.Join(", ", missingFiles)}.", inner)
    {
        RepoId = repoId;
        Revision = revision;
        MissingFiles = missingFiles;
    }

    public string RepoId { get; }

    public string Revision { get; }

    /// <summary>Repository paths, or <c>refs/{revision}</c> when no snapshot of the revision is cached at all.</summary>
    public IReadOnlyList<string> MissingFiles { get; }
}
