using System.Reflection;
using System.Text.RegularExpressions;
using Spectre.Console.Cli;

namespace Wuerstchen.Cli;

/// <summary>A usage error found while a command runs (before any work): exit code 2.</summary>
public sealed class CliUsageException(string message) : Exception(message);

/// <summary>Turns the command-line parser's errors into lines in the user's terms.</summary>
public static partial class OptionErrors
{
    [GeneratedRegex(@"^Failed to convert '(?<value>.*)' to (?<type>.+?)\.?$", RegexOptions.Singleline)]
    private static partial Regex ConversionFailure();

    /// <summary>The parser's message; a value that does not convert is named by its option and the kind of value wanted.</summary>
    public static string Describe(CommandAppException exception, IReadOnlyList<string> args)
    {
        string message = exception.Message.Trim();
        var match = ConversionFailure().Match(message);
        if (!match.Success)
            return message;
        string value = match.Groups["value"].Value;
        string? option = OptionGiven(value, args);
        if (option is null)
            return $"'{value}' is not a valid value.";
        string wanted = OptionType(option) switch
        {
            { } t when t == typeof(int) || t == typeof(long) => "a whole number",
            { } t when t == typeof(double) || t == typeof(float) => "a number",
            _ => "a valid value",
        };
        return $"{option}: '{value}' is not {wanted}.";
    }

    /// <summary>The option the value was given to (<c>--width abc</c> or <c>--width=abc</c>).</summary>
    private static string? OptionGiven(string value, IReadOnlyList<string> args)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg.StartsWith('-') && arg.Contains('=') && arg[(arg.IndexOf('=') + 1)..] == value)
                return arg[..arg.IndexOf('=')];
            if (arg == value && i > 0 && args[i - 1].StartsWith('-'))
                return args[i - 1];
        }
        return null;
    }

    private static Type? OptionType(string option)
    {
        string name = option.TrimStart('-');
        bool longName = option.StartsWith("--", StringComparison.Ordinal);
        foreach (var type in typeof(OptionErrors).Assembly.GetTypes().Where(t => typeof(CommandSettings).IsAssignableFrom(t)))
        {
            foreach (var property in type.GetProperties())
            {
                if (property.GetCustomAttribute<CommandOptionAttribute>() is { } attribute &&
                    (longName ? attribute.LongNames : attribute.ShortNames).Contains(name))
                {
                    var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
                    return propertyType.IsArray ? propertyType.GetElementType() : propertyType;
                }
            }
        }
        return null;
    }
}
