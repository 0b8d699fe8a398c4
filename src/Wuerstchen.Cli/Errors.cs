using System.Text;

namespace Wuerstchen.Cli;

/// <summary>One-line error reports on standard error, each with its exit code.</summary>
public static class Errors
{
    /// <summary>Request fields that name a model: when only these are wrong, a model is missing (exit code 3), not an argument.</summary>
    private static readonly HashSet<string> ModelFields = new(StringComparer.Ordinal) { "priorModel", "decoderModel", "basePrior", "effnetModel" };

    public static int Invalid(string message) => Report(message, ExitCodes.InvalidInput);

    public static int Failed(string message) => Report(message, ExitCodes.Failed);

    public static int ModelUnavailable(string message) => Report(message, ExitCodes.ModelUnavailable);

    /// <summary>
    /// Every bad field on its own line, named as the command line names it: <paramref name="options"/> maps the
    /// request's field names to options where they differ; any other field becomes its kebab-case option
    /// (<c>priorSteps</c> → <c>--prior-steps</c>).
    /// </summary>
    public static int FromValidation(IReadOnlyDictionary<string, string[]> errors, IReadOnlyDictionary<string, string>? options = null)
    {
        foreach (var (field, messages) in errors.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            string name = options?.GetValueOrDefault(field) ?? OptionName(field);
            foreach (string message in messages)
                Write($"{name}: {message}");
        }
        return errors.Keys.All(ModelFields.Contains) ? ExitCodes.ModelUnavailable : ExitCodes.InvalidInput;
    }

    /// <summary><c>priorSteps</c> → <c>--prior-steps</c>.</summary>
    public static string OptionName(string field)
    {
        var name = new StringBuilder("--");
        foreach (char c in field)
        {
            if (char.IsAsciiLetterUpper(c))
                name.Append('-').Append(char.ToLowerInvariant(c));
            else
                name.Append(c == '.' ? '-' : c);
        }
        return name.ToString();
    }

    public static int Report(string message, int exitCode)
    {
        Write(message);
        return exitCode;
    }

    public static void Write(string message) => Console.Error.WriteLine($"error: {message}");
}
