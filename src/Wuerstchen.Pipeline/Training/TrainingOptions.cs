namespace Wuerstchen.Pipeline.Training;

/// <summary>Stage C fine-tuning and scheduled retraining. Bound from <c>Wuerstchen:Training</c>.</summary>
public sealed class TrainingOptions
{
    public const string Section = "Wuerstchen:Training";

    /// <summary>
    /// The EfficientNet encoder that makes the training targets: a model name resolved under the model root like any
    /// other (a single-model folder with <c>config.json</c> and <c>model.safetensors</c>; it is not part of the
    /// published Würstchen repositories, see the README).
    /// </summary>
    public string EffnetModel { get; set; } = "effnet";

    /// <summary>The retraining timer's NCRONTAB expression (six fields, UTC); the trigger reads <c>%Wuerstchen:Training:Schedule%</c>.</summary>
    public string Schedule { get; set; } = "0 0 3 * * *";

    /// <summary>The datasets the timer retrains on when their images or captions change.</summary>
    public List<ScheduledFineTune> Scheduled { get; set; } = [];

    /// <summary>Local dataset folders must lie under this folder; unset, only blob datasets are accepted.</summary>
    public string? DatasetsRoot { get; set; }

    /// <summary>Images larger than this (bytes) are reported and skipped without being decoded.</summary>
    public long MaxImageBytes { get; set; } = 64L << 20;

    /// <summary>Images with more pixels than this (read from the header before decoding) are reported and skipped.</summary>
    public long MaxImagePixels { get; set; } = 40_000_000;

    /// <summary>Items a dataset may hold.</summary>
    public int MaxItems { get; set; } = 200_000;

    /// <summary>Images encoded per EfficientNet / CLIP forward pass while preparing.</summary>
    public int PrepareBatchSize { get; set; } = 8;

    /// <summary>Optimiser steps per training activity when the request names none.</summary>
    public int StepsPerChunk { get; set; } = 250;

    /// <summary>Checkpoints kept per run (the newest; at least two, so a corrupt newest one has a predecessor).</summary>
    public int CheckpointsToKeep { get; set; } = 3;

    /// <summary>How often a running chunk (or preparation) publishes its step, loss, rate, speed and ETA to the status.</summary>
    public TimeSpan ProgressInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>How often a running chunk writes its steps so far to the loss log (<c>loss.jsonl</c>); each chunk's end writes them too.</summary>
    public TimeSpan LossLogInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A full garbage collection every this many steps: finalisable native objects otherwise pin the native heap (torchsharp.md §6).</summary>
    public int CollectGarbageEvery { get; set; } = 10;

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(EffnetModel))
            errors.Add($"{Section}:EffnetModel is not set; name the EfficientNet encoder's folder under the model root.");
        if (string.IsNullOrWhiteSpace(Schedule) || Schedule.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length != 6)
            errors.Add($"{Section}:Schedule is '{Schedule}'; use a six-field NCRONTAB expression such as '0 0 3 * * *'.");
        foreach (var (key, value) in new (string, long)[]
                 {
                     (nameof(MaxImageBytes), MaxImageBytes), (nameof(MaxImagePixels), MaxImagePixels), (nameof(MaxItems), MaxItems),
                     (nameof(PrepareBatchSize), PrepareBatchSize), (nameof(StepsPerChunk), StepsPerChunk), (nameof(CollectGarbageEvery), CollectGarbageEvery),
                 })
        {
            if (value < 1)
                errors.Add($"{Section}:{key} is {value}; it must be at least 1.");
        }
        foreach (var (key, value) in new[] { (nameof(ProgressInterval), ProgressInterval), (nameof(LossLogInterval), LossLogInterval) })
        {
            if (value <= TimeSpan.Zero)
                errors.Add($"{Section}:{key} is {value}; it must be a positive duration (e.g. 00:00:02).");
        }
        if (CheckpointsToKeep < 2)
            errors.Add($"{Section}:CheckpointsToKeep is {CheckpointsToKeep}; keep at least 2 so a corrupt newest checkpoint has a predecessor.");
        for (int i = 0; i < Scheduled.Count; i++)
        {
            if (Scheduled[i].Request.Dataset is null)
                errors.Add($"{Section}:Scheduled:{i}:Request:Dataset is not set.");
        }
        return errors;
    }
}

/// <summary>One dataset the timer watches, with the fine-tune it starts when the dataset changes.</summary>
public sealed class ScheduledFineTune
{
    /// <summary>A label for logs and the schedule log.</summary>
    public string Name { get; set; } = "";

    public FineTuneRequest Request { get; set; } = new();
}
