using Spectre.Console;

namespace Wuerstchen.Cli;

/// <summary>One-line error reports on standard error, each with its exit code.</summary>
public static class Errors
{
    public static int Invalid(string message) => Report(message, ExitCodes.InvalidInput);

    public static int Failed(string message) => Report(message, ExitCodes.Failed);

    public static int ModelUnavailable(string message) => Report(message, ExitCodes.ModelUnavailable);

    /// <summary>Every bad field on its own line; an unknown model is a missing model, not a typo in a number.</summary>
    public static int FromValidation(IReadOnlyDictionary<string, string[]> errors)
    {
        foreach (var (field, messages) in errors.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            foreach (string message in messages)
                Write($"{field}: {message}");
        }
        bool onlyModels = errors.Keys.All(k => k is "priorModel" or "decoderModel");
        return onlyModels ? ExitCodes.ModelUnavailable : ExitCodes.InvalidInput;
    }

    public static int Report(string message, int exitCode)
    {
        Write(message);
        return exitCode;
    }

    public static void Write(string message) => Console.Error.WriteLine($"error: {message}");
}
