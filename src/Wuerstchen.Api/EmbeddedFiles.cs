using System.Reflection;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.StaticFiles;

namespace Wuerstchen.Api;

/// <summary>
/// Static files embedded in this assembly under a prefix, served the same by both hosts: the API reference page
/// (<c>reference/</c>, from src/Wuerstchen.Api/Reference) and the web app (<c>wwwroot/</c>, from
/// src/Wuerstchen.Web/wwwroot; see <see cref="WebAppFiles"/>). Nothing is read from disk at run time, so the Functions
/// app serves exactly what was built into it.
/// </summary>
public sealed class EmbeddedFiles
{
    private static readonly FileExtensionContentTypeProvider ContentTypes = new();
    private readonly Assembly _assembly;
    private readonly string _prefix;
    private readonly HashSet<string> _names;

    public EmbeddedFiles(Assembly assembly, string prefix)
    {
        _assembly = assembly;
        _prefix = prefix;
        _names = assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal))
            .Select(n => n[prefix.Length..]).ToHashSet(StringComparer.Ordinal);
    }

    public static EmbeddedFiles Reference { get; } = new(typeof(EmbeddedFiles).Assembly, "reference/");

    public static EmbeddedFiles WebApp { get; } = new(typeof(EmbeddedFiles).Assembly, "wwwroot/");

    /// <summary>The files' paths, relative to the prefix.</summary>
    public IReadOnlyCollection<string> Files => _names;

    /// <summary>
    /// The file at <paramref name="path"/> (an empty path or one ending in <c>/</c> means its <c>index.html</c>), or 404.
    /// Names are looked up, never joined onto a folder, so <c>..</c> cannot reach anything else.
    /// </summary>
    public IActionResult Get(string? path)
    {
        string name = (path ?? "").TrimStart('/');
        if (name.Length == 0 || name.EndsWith('/'))
            name += "index.html";
        if (!_names.Contains(name))
            return HttpResults.Problem(StatusCodes.Status404NotFound, $"There is no file '/{_prefix.TrimEnd('/')}/{name}'.");
        if (!ContentTypes.TryGetContentType(name, out string? contentType))
            contentType = "application/octet-stream";
        if (contentType.StartsWith("text/", StringComparison.Ordinal) || contentType is "application/javascript" or "application/json")
            contentType += "; charset=utf-8";
        return new FileStreamResult(_assembly.GetManifestResourceStream(_prefix + name)!, contentType);
    }
}

/// <summary>
/// The web app's extension point: its files live in src/Wuerstchen.Web/wwwroot and are embedded in this assembly
/// (Wuerstchen.Api.csproj) under <c>wwwroot/</c>; both hosts serve them at <c>/app/{path}</c> (route "WebApp"), and the
/// site root redirects there (route "WebAppRoot").
/// </summary>
public static class WebAppFiles
{
    public const string BasePath = "/app/";

    public static IActionResult Root() => new RedirectResult(BasePath, permanent: false);
}
