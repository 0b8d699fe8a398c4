namespace Wuerstchen.Pipeline.Hub;

/// <summary>
/// A repository revision in the local cache: <see cref="Directory"/> is <c>snapshots/{commit}</c>, which
/// <see cref="Wuerstchen.Models.Loading.ModelRepository.Open"/> reads.
/// </summary>
/// <param name="Files">The repository paths the snapshot holds for this request.</param>
/// <param name="FromCache">True when the Hub was not asked (offline) or could not be reached and the cache sufficed.</param>
public sealed record HubSnapshot(string RepoId, string Revision, string Commit, string Directory, IReadOnlyList<string> Files, bool FromCache);
