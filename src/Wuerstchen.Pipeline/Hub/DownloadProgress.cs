namespace Wuerstchen.Pipeline.Hub;

/// <summary>
/// How far the download of one repository file has come; <see cref="TotalBytes"/> is the file's size. A report with
/// <see cref="Starting"/> comes as a request for the file's bytes begins: at 0, or, resuming an interrupted download (in
/// this call or an earlier one), at the bytes already kept.
/// </summary>
public readonly record struct DownloadProgress(string RepoId, string Path, long BytesDownloaded, long TotalBytes, bool Starting = false);
