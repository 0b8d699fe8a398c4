using Microsoft.DurableTask;

namespace Wuerstchen.Workflows;

/// <summary>Orchestration failures as the people who started them should read them.</summary>
public static class WorkflowFailures
{
    /// <summary>
    /// The failure in the words of whatever failed: an activity's own message rather than the engine's wrapper
    /// ("Task 'PrepareFineTuneData' (#2) failed with an unhandled exception: …").
    /// </summary>
    public static string? Message(TaskFailureDetails? failure)
    {
        while (failure?.InnerFailure is { } inner)
            failure = inner;
        return failure?.ErrorMessage;
    }
}
