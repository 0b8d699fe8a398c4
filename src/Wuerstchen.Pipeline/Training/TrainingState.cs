namespace Wuerstchen.Pipeline.Training;

/// <summary>
/// Everything beyond the tensors that a checkpoint needs to continue the run exactly: the step (which is also the
/// learning-rate schedule's position), the three random streams' states, the data order (this epoch's seeded
/// permutation and the cursor in it), the EMA's update count, and what the run trains on.
/// </summary>
public sealed record TrainingState
{
    public required string RunId { get; init; }

    /// <summary>Optimiser steps taken.</summary>
    public required int Step { get; init; }

    /// <summary>Steps the learning-rate schedule has advanced (= <see cref="Step"/>); the next step's rate is <see cref="TrainingRecipe.LearningRateAt"/> of it.</summary>
    public required int SchedulePosition { get; init; }

    /// <summary>The rate of the last step taken.</summary>
    public required double LearningRate { get; init; }

    public required int Epoch { get; init; }

    /// <summary>The next position in <see cref="Permutation"/>.</summary>
    public required int Cursor { get; init; }

    /// <summary>This epoch's order of the prepared items (indices), drawn from the data stream.</summary>
    public required IReadOnlyList<int> Permutation { get; init; }

    /// <summary>libtorch CPU generator states (base64): t, ε and caption dropout; data order; the model's dropout masks.</summary>
    public required string NoiseRng { get; init; }
    public required string DataRng { get; init; }
    public required string DropoutRng { get; init; }

    public required long EmaUpdates { get; init; }

    public required string DatasetVersion { get; init; }

    public required int ItemCount { get; init; }

    public required string RecipeHash { get; init; }

    /// <summary>The run's recipe, for a reader of the checkpoint alone.</summary>
    public TrainingRecipe? Recipe { get; init; }

    public double? LastLoss { get; init; }
}
