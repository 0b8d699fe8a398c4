using System.Text;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;

namespace Wuerstchen.Cli;

/// <summary>With <c>--verbose</c>, a failed orchestration's whole failure chain (each activity's exception and stack trace) on standard error.</summary>
public static class FailureDetails
{
    public static async Task WriteAsync(DurableTaskClient client, string instanceId, bool verbose)
    {
        if (!verbose)
            return;
        var instance = await client.GetInstanceAsync(instanceId, getInputsAndOutputs: false, CancellationToken.None);
        var text = new StringBuilder();
        for (var failure = instance?.FailureDetails; failure is not null; failure = failure.InnerFailure)
        {
            text.AppendLine($"{failure.ErrorType}: {failure.ErrorMessage}");
            if (failure.StackTrace is { Length: > 0 } trace)
                text.AppendLine(trace.TrimEnd());
        }
        if (text.Length > 0)
            Console.Error.Write(text.ToString());
    }

}
