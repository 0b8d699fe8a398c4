namespace Wuerstchen.Pipeline.Hub;

/// <summary>How far the download of one repository file has come; <see cref="TotalBytes"/> is the file's size.</summary>
public readonly record struct DownloadProgress(string RepoId, string Path, long BytesDownloaded, long TotalBytes);
