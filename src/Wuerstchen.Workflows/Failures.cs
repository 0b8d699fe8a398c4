using Microsoft.DurableTask;
using Wuerstchen.Models.Loading;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Workflows;

/// <summary>
/// A failure another attempt cannot cure (the work was cancelled, its input is gone or invalid, the model cannot load,
/// the device cannot hold it): activities throw it and the retry policy fails at once instead of backing off.
/// Messages are for clients and name no server paths.
/// </summary>
public abstract class PermanentFailureException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The generation was cancelled (its cancel marker was found); the stage stopped without writing its output.</summary>
public sealed class GenerationCancelledException(string generationId)
    : PermanentFailureException($"Generation '{generationId}' was cancelled by the client.")
{
    public string GenerationId { get; } = generationId;
}

/// <summary>A stage ran out of device memory: the same request would again.</summary>
public sealed class StageOutOfMemoryException(string stage, string what, Exception inner)
    : PermanentFailureException($"{stage} ran out of memory for {what}; ask for fewer or smaller images, or run on a device with more memory.", inner);

/// <summary>A stage's input (its plan or a latents blob) cannot be read as what it should hold.</summary>
public sealed class InvalidStageDataException(string stage, string problem, Exception inner)
    : PermanentFailureException($"{stage} cannot use its input: {problem}", inner);

/// <summary>Which activity failures the retry policy retries.</summary>
public static class Failures
{
    /// <summary>Thrown by code that knows its failure is permanent, whatever the activity.</summary>
    private static readonly Type[] PermanentTypes =
    [
        typeof(PermanentFailureException),
        typeof(ModelNotLoadableException),
        typeof(UnknownModelException),
        typeof(ModelConfigException),
        typeof(FineTuneCancelledException),
        typeof(OutOfMemoryException),
    ];

    /// <summary>Whether another attempt could succeed; evaluated by the orchestrator, so it looks at the failure's recorded type and message only.</summary>
    public static bool IsTransient(TaskFailureDetails failure)
    {
        for (var current = failure; current is not null; current = current.InnerFailure)
        {
            if (PermanentTypes.Any(current.IsCausedBy) || IsOutOfMemoryMessage(current.ErrorMessage))
                return false;
        }
        return true;
    }

    /// <summary>Whether a failure of a generation's stage (or a batch of a bulk job) is its cancellation.</summary>
    public static bool IsCancellation(TaskFailureDetails? failure)
    {
        for (var current = failure; current is not null; current = current.InnerFailure)
        {
            if (current.IsCausedBy<GenerationCancelledException>())
                return true;
        }
        return false;
    }

    /// <summary>LibTorch's allocators (CUDA and CPU) report exhaustion as a native error with these words.</summary>
    public static bool IsOutOfMemory(Exception e) =>
        e is OutOfMemoryException || (e is System.Runtime.InteropServices.ExternalException && IsOutOfMemoryMessage(e.Message));

    private static bool IsOutOfMemoryMessage(string? message) =>
        message is not null && (message.Contains("out of memory", StringComparison.OrdinalIgnoreCase)
                                || message.Contains("not enough memory", StringComparison.OrdinalIgnoreCase)
                                || message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase));
}
