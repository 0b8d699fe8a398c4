using Azure;

namespace Wuerstchen.Pipeline.Training;

/// <summary>Reading blobs that a running activity keeps replacing (its progress, the loss log).</summary>
internal static class BlobReads
{
    private const int Attempts = 5;

    /// <summary>
    /// Runs <paramref name="read"/> again when the blob was replaced while it was read: Azure Blob Storage reads are
    /// pinned to the version they opened and fail with 412 (condition not met) rather than mix two versions.
    /// </summary>
    public static async Task<T> RetryWhileReplacedAsync<T>(Func<Task<T>> read, CancellationToken cancellationToken)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await read().ConfigureAwait(false);
            }
            catch (Exception e) when (attempt < Attempts && ReplacedWhileReading(e))
            {
                await Task.Delay(20 * attempt, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static bool ReplacedWhileReading(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is RequestFailedException { Status: 412 })
                return true;
        }
        return false;
    }
}
