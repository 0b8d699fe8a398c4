namespace Wuerstchen.Pipeline.Hub;

/// <summary>A downloaded file whose SHA-256 (LFS files) or size (other files) differs from what the Hub announced; the partial file was deleted.</summary>
public sealed class HubFileVerificationException : Exception
{
    public HubFileVerificationException(string repoId, string path, string check, string expected, string actual)
        : base($"The download of '{path}' from {repoId} failed verification: its {check} is {actual}, expected {expected}. The partial file was deleted.")
    {
        RepoId = repoId;
        Path = path;
    }

    public string RepoId { get; }

    public string Path { get; }
}
