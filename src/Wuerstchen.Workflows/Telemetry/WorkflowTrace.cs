using System.Diagnostics;
using Wuerstchen.Pipeline.Diagnostics;

namespace Wuerstchen.Workflows.Telemetry;

/// <summary>
/// What a generation's or bulk job's Durable input carries for telemetry: the W3C <c>traceparent</c> of the span that
/// submitted it (so every stage activity, on whichever replica, joins that one trace) and when it was submitted (for
/// the queue-wait metric). Set by the client when it schedules the orchestration; orchestrations only pass it on, so
/// they stay deterministic.
/// </summary>
/// <param name="BulkJobId">The bulk job a generation is a batch of (the tag that tells bulk work from single prompts).</param>
public sealed record WorkflowTrace(string? TraceParent, DateTimeOffset SubmittedAt, string? BulkJobId = null)
{
    /// <summary>The trace of <paramref name="submitted"/> (or, without one, of the caller's current span), submitted now.</summary>
    public static WorkflowTrace From(Activity? submitted, string? bulkJobId = null) =>
        new(WuerstchenTelemetry.TraceParentOf(submitted ?? Activity.Current), DateTimeOffset.UtcNow, bulkJobId);

    /// <summary>The <see cref="WuerstchenTelemetry.Tags.Kind"/> value: bulk or generation.</summary>
    public string Kind => BulkJobId is null ? "generation" : "bulk";
}
