namespace Wuerstchen.Pipeline.Storage;

/// <summary>
/// The top-level prefixes the app writes its own blobs under, in one place: what a client may not name as a dataset,
/// and what the retention timer and the storage lifecycle rule look after.
/// </summary>
public static class AppBlobPrefixes
{
    public const string Generations = "generations/";
    public const string Latents = "latents/";
    public const string Images = "images/";
    public const string Bulk = "bulk/";
    public const string Training = "training/";
    public const string Models = "models/";

    /// <summary>The gallery's index of generations, newest first, and its thumbnails.</summary>
    public const string Gallery = "gallery/";

    public static readonly IReadOnlyList<string> All = [Generations, Latents, Images, Bulk, Training, Models, Gallery];

    /// <summary>
    /// Why <paramref name="prefix"/> cannot be a client's data prefix (a dataset), or null when it can: it must be a
    /// valid relative blob prefix that lies outside the app's own prefixes and the store's reserved segments.
    /// </summary>
    public static string? ClientPrefixProblem(string prefix)
    {
        if (prefix.Length == 0)
            return "it is empty; name a folder of the store such as 'datasets/pokemon/'";
        string folder = prefix.EndsWith('/') ? prefix : prefix + "/";
        if (BlobNames.PrefixProblem(folder) is { } problem)
            return problem;
        return All.FirstOrDefault(own => folder.StartsWith(own, StringComparison.Ordinal)) is { } reserved
            ? $"'{reserved}' holds the app's own blobs; put datasets under another prefix such as 'datasets/'"
            : null;
    }
}
