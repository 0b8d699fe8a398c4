using System.Text.RegularExpressions;

namespace Wuerstchen.Pipeline;

/// <summary>Error messages as clients may see them: the server's file paths reduced to their last part.</summary>
public static partial class ErrorText
{
    // An absolute Unix path (not part of a URL, a relative blob name or the API's own routes) or a Windows drive path.
    [GeneratedRegex(@"(?<![\w.:/~\-])/(?!api/)(?:[^/\s'""`,;()<>\[\]{}]+/)+[^/\s'""`,;()<>\[\]{}]*|\b[A-Za-z]:\\(?:[^\\\s'""`,;()<>]+\\)*[^\\\s'""`,;()<>]*")]
    private static partial Regex AbsolutePath();

    /// <summary>Replaces each absolute path in <paramref name="message"/> with <c>…/</c> and its last part.</summary>
    public static string? WithoutPaths(string? message) => message is null ? null : AbsolutePath().Replace(message, m =>
    {
        string path = m.Value.TrimEnd('/', '\\', '.');
        int last = Math.Max(path.LastIndexOf('/'), path.LastIndexOf('\\'));
        return "…/" + path[(last + 1)..] + m.Value[path.Length..];
    });
}
