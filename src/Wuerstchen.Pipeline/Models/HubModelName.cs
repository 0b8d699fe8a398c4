using Wuerstchen.Pipeline.Hub;

namespace Wuerstchen.Pipeline.Models;

/// <summary>
/// A Hub model pinned to a revision: <c>owner/name@revision</c> (a branch, tag or commit) names the snapshot that
/// revision resolved to when it was downloaded (<c>refs/{revision}</c> in the Hugging Face cache), where the plain
/// <c>owner/name</c> names the one of <c>main</c>. Requests, recipes and PNGs carry the name as it is, so every image
/// records the revision its model came from.
/// </summary>
public static class HubModelName
{
    public const char RevisionSeparator = '@';

    /// <summary>The repository and the revision (null when the name carries none).</summary>
    public static (string Repository, string? Revision) Split(string name)
    {
        int at = name.IndexOf(RevisionSeparator, StringComparison.Ordinal);
        return at < 0 ? (name, null) : (name[..at], name[(at + 1)..]);
    }

    public static string WithRevision(string repository, string revision) => $"{repository}{RevisionSeparator}{revision}";

    /// <summary>Whether <paramref name="name"/> is a Hub repository id (<c>owner/name</c>) without a revision.</summary>
    public static bool IsRepositoryId(string name) => HubRepoCache.IsRepoId(name);

    /// <summary>Whether <paramref name="revision"/> can be a branch, tag or commit name that stays inside the cache's <c>refs/</c>.</summary>
    public static bool IsValidRevision(string? revision) => revision is not null && HubRepoCache.IsValidRevision(revision);

    /// <summary>What a revision may look like, for error messages.</summary>
    public const string RevisionRule =
        "give a branch, tag or commit of the Hub repository, such as main, v1.0 or a 40-digit commit hash (letters, digits, '.', '_', '-', and '/' between parts)";

    /// <summary>The revisions a cached repository folder (<c>models--owner--name</c>) has refs for, with their commits.</summary>
    public static IReadOnlyList<(string Revision, string Commit)> CachedRevisions(string repositoryFolder) => HubRepoCache.Refs(repositoryFolder);
}
