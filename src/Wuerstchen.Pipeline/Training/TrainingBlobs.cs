namespace Wuerstchen.Pipeline.Training;

/// <summary>Where a fine-tune keeps its things in the blob store.</summary>
public static class TrainingBlobs
{
    public static string Run(string runId) => $"training/runs/{runId}/run.json";

    public static string DatasetManifest(string runId) => $"training/runs/{runId}/dataset/manifest.json";

    public static string DatasetReport(string runId) => $"training/runs/{runId}/dataset/report.json";

    public static string Prepared(string runId) => $"training/runs/{runId}/prepared.json";

    public static string CheckpointsPrefix(string runId) => $"training/runs/{runId}/checkpoints/";

    public static string Checkpoint(string runId, int step) => $"{CheckpointsPrefix(runId)}{step:D8}/";

    public static string Grid(string runId, int step) => $"training/runs/{runId}/grids/{step:D8}.png";

    public static string LossLog(string runId) => $"training/runs/{runId}/loss.jsonl";

    /// <summary>The running chunk's (or preparation's) latest progress (<see cref="TrainingProgress"/>).</summary>
    public static string Progress(string runId) => $"training/runs/{runId}/progress.json";

    /// <summary>Which start of the run may train it (<see cref="RunLease"/>); a cancel deletes it.</summary>
    public static string Lease(string runId) => $"training/runs/{runId}/lease.json";

    public static string CacheEntry(string encoderKey, string itemKey) => $"training/cache/{encoderKey}/{itemKey[..2]}/{itemKey}.safetensors";

    public static string EmptyCaption(string encoderKey) => $"training/cache/{encoderKey}/empty-caption.safetensors";

    public const string ScheduleLog = "training/schedule-log.jsonl";
}
