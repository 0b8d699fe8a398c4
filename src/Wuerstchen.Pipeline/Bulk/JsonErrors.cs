using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Wuerstchen.Pipeline.Bulk;

/// <summary>System.Text.Json's errors in a JSON writer's terms: the field and what is wrong with it, never .NET type names.</summary>
public static partial class JsonErrors
{
    [GeneratedRegex("The JSON property '(?<name>[^']*)' could not be mapped")]
    private static partial Regex UnknownProperty();

    [GeneratedRegex(@"\s*(Path: .*|LineNumber: .*)$", RegexOptions.Singleline)]
    private static partial Regex Position();

    public static string Describe(JsonException exception)
    {
        string message = exception.Message;
        var unknown = UnknownProperty().Match(message);
        if (unknown.Success)
            return $"unknown field '{unknown.Groups["name"].Value}'.";
        string field = exception.Path is { Length: > 1 } path && path.StartsWith("$.", StringComparison.Ordinal) ? path[2..] : "";
        if (message.Contains("could not be converted to", StringComparison.Ordinal))
            return field.Length > 0 ? $"'{field}' has a value of the wrong type." : "the value has the wrong type.";
        string what = Position().Replace(message, "").Trim().TrimEnd('.', '|').Trim();
        string where = exception.BytePositionInLine is { } column ? $" at column {(column + 1).ToString(CultureInfo.InvariantCulture)}" : "";
        return $"{what}{where}.";
    }
}
