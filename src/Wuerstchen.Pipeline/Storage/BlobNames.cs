namespace Wuerstchen.Pipeline.Storage;

/// <summary>
/// The rules every store applies to names, prefixes, metadata and link lifetimes, so that what works against a local
/// folder also works against Azure and the other way round.
/// </summary>
internal static class BlobNames
{
    public const int MaxNameLength = 1024;

    /// <summary>Segments starting with this are the file-system store's own (temp files, the metadata tree).</summary>
    public const string ReservedPrefix = ".wuerstchen";

    /// <summary>The longest read link either store hands out (Azure's cap for a user delegation key).</summary>
    public static readonly TimeSpan MaxReadLinkLifetime = TimeSpan.FromDays(7);

    public static void Validate(string name, string paramName = "name")
    {
        ArgumentNullException.ThrowIfNull(name, paramName);
        if (Problem(name, isPrefix: false) is { } problem)
        {
            throw new ArgumentException($"Blob name '{name}' is not valid: {problem}.", paramName);
        }
    }

    /// <summary>A prefix is a name cut anywhere: its complete segments follow the name rules, the last may be partial or empty.</summary>
    public static void ValidatePrefix(string prefix, string paramName = "prefix")
    {
        ArgumentNullException.ThrowIfNull(prefix, paramName);
        if (prefix.Length > 0 && Problem(prefix, isPrefix: true) is { } problem)
        {
            throw new ArgumentException($"Blob prefix '{prefix}' is not valid: {problem}.", paramName);
        }
    }

    /// <summary>Why <paramref name="prefix"/> is not a valid prefix (as <see cref="ValidatePrefix"/> words it), or null.</summary>
    public static string? PrefixProblem(string prefix) => prefix.Length == 0 ? null : Problem(prefix, isPrefix: true);

    /// <summary>
    /// Metadata names are what Azure accepts (C# identifiers, compared without case, sent as HTTP headers, so ASCII);
    /// values may be any text.
    /// </summary>
    public static void ValidateMetadata(IReadOnlyDictionary<string, string>? metadata, string blobName)
    {
        if (metadata is null)
        {
            return;
        }

        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in metadata)
        {
            if (!IsIdentifier(key))
            {
                throw new ArgumentException(
                    $"Metadata name '{key}' of blob '{blobName}' is not valid: use an ASCII letter or '_' followed by ASCII letters, digits or '_'.",
                    "options");
            }

            if (!seen.Add(key))
            {
                throw new ArgumentException(
                    $"Metadata names of blob '{blobName}' differ only in case ('{key}'); stores compare them without case.", "options");
            }

            if (value is null)
            {
                throw new ArgumentException($"Metadata value '{key}' of blob '{blobName}' is null.", "options");
            }
        }
    }

    public static void ValidateLifetime(TimeSpan lifetime, string paramName = "lifetime")
    {
        if (lifetime <= TimeSpan.Zero || lifetime > MaxReadLinkLifetime)
        {
            throw new ArgumentOutOfRangeException(paramName, lifetime,
                $"A read link's lifetime must be more than zero and at most {MaxReadLinkLifetime.TotalDays:0} days.");
        }
    }

    private static string? Problem(string name, bool isPrefix)
    {
        if (!isPrefix && name.Length == 0)
        {
            return "it is empty";
        }

        if (name.Length > MaxNameLength)
        {
            return $"it has {name.Length} characters, more than {MaxNameLength}";
        }

        if (name.Contains('\\'))
        {
            return "it contains '\\'; separate segments with '/'";
        }

        if (name.Any(char.IsControl))
        {
            return "it contains a control character";
        }

        if (name[0] == '/' || Path.IsPathRooted(name))
        {
            return "it is absolute; names are relative to the store";
        }

        var segments = name.Split('/');
        // A prefix's last segment may be cut short (or empty, after a trailing '/'); only its complete ones are checked.
        var complete = isPrefix ? segments.AsSpan(0, segments.Length - 1) : segments.AsSpan();
        foreach (var segment in complete)
        {
            if (segment.Length == 0)
            {
                return "it has an empty segment ('//' or a trailing '/')";
            }

            if (segment is "." or "..")
            {
                return $"it has a '{segment}' segment";
            }

            if (segment.StartsWith(ReservedPrefix, StringComparison.Ordinal))
            {
                return $"segments starting with '{ReservedPrefix}' are reserved for the store";
            }
        }

        return null;
    }

    private static bool IsIdentifier(string key) =>
        key.Length > 0
        && (char.IsAsciiLetter(key[0]) || key[0] == '_')
        && key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');
}
