using System.Text;
using System.Text.Json;
using SixLabors.ImageSharp;

namespace Wuerstchen.Pipeline.Training;

/// <summary>One trainable item: an image, its caption and its content hash.</summary>
public sealed record DatasetItem(string Name, string Caption, string ImageSha256, int Width, int Height, long Bytes);

/// <summary>An item (or file, or metadata line) that was skipped, and why.</summary>
public sealed record DatasetProblem(string Name, string Reason);

/// <summary>
/// A dataset as read: its items in name order, the problems found, and its version, the hash of every item's name,
/// image hash and caption, which changes exactly when an image or caption is added, removed or changed.
/// </summary>
public sealed record DatasetManifest(string Format, string Version, IReadOnlyList<DatasetItem> Items, IReadOnlyList<DatasetProblem> Problems)
{
    public const string ImageFolderFormat = "imagefolder";
    public const string PairsFormat = "pairs";

    public static string VersionOf(IEnumerable<DatasetItem> items) =>
        TrainingHashes.OfJson(items.Select(i => new { i.Name, i.ImageSha256, i.Caption }).ToArray());
}

/// <summary>The limits the scanner applies before decoding anything.</summary>
public sealed record DatasetLimits(long MaxImageBytes, long MaxImagePixels, int MaxItems)
{
    public static DatasetLimits From(TrainingOptions options) => new(options.MaxImageBytes, options.MaxImagePixels, options.MaxItems);
}

/// <summary>
/// Reads a captioned image dataset in either layout: Hugging Face's imagefolder (<c>metadata.jsonl</c> lines with
/// <c>file_name</c> and <c>text</c>) or <c>name.png</c> + <c>name.txt</c> pairs. Every item is checked — its caption
/// present and non-empty, its size within the byte limit, its header readable as one of the formats of
/// <see cref="DatasetImages"/> and its pixel count within the limit (read from the header, before any decoding) — and a failing item is reported by name
/// and skipped, never thrown.
/// </summary>
public static class DatasetScanner
{
    public const string MetadataFile = "metadata.jsonl";
    private const string CaptionExtension = ".txt";

    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".tga",
    };

    public static bool IsImage(string name) => ImageExtensions.Contains(Path.GetExtension(name));

    public static async Task<DatasetManifest> ScanAsync(IDatasetSource source, DatasetLimits limits, CancellationToken cancellationToken)
    {
        var files = new List<DatasetFile>();
        await foreach (var file in source.ListAsync(cancellationToken).ConfigureAwait(false))
            files.Add(file);
        var problems = new List<DatasetProblem>();
        bool imageFolder = files.Any(f => f.Name == MetadataFile);
        var captioned = imageFolder
            ? await ImageFolderCaptionsAsync(source, files, problems, cancellationToken).ConfigureAwait(false)
            : await PairCaptionsAsync(source, files, problems, cancellationToken).ConfigureAwait(false);

        var items = new List<DatasetItem>();
        foreach (var (file, caption) in captioned.OrderBy(c => c.File.Name, StringComparer.Ordinal))
        {
            if (items.Count >= limits.MaxItems)
            {
                problems.Add(new DatasetProblem(file.Name, $"skipped: the dataset holds more than {limits.MaxItems} items."));
                continue;
            }
            if (await CheckImageAsync(source, file, caption, limits, cancellationToken).ConfigureAwait(false) is { } outcome)
            {
                if (outcome.Item is not null)
                    items.Add(outcome.Item);
                else
                    problems.Add(outcome.Problem!);
            }
        }
        return new DatasetManifest(imageFolder ? DatasetManifest.ImageFolderFormat : DatasetManifest.PairsFormat,
            DatasetManifest.VersionOf(items), items, problems.OrderBy(p => p.Name, StringComparer.Ordinal).ToArray());
    }

    private static async Task<List<(DatasetFile File, string Caption)>> PairCaptionsAsync(IDatasetSource source, List<DatasetFile> files, List<DatasetProblem> problems, CancellationToken cancellationToken)
    {
        var byName = files.ToDictionary(f => f.Name, StringComparer.Ordinal);
        var images = files.Where(f => IsImage(f.Name)).ToList();
        var imageStems = new HashSet<string>(images.Select(f => Stem(f.Name)), StringComparer.Ordinal);
        foreach (var file in files.Where(f => !IsImage(f.Name)))
        {
            if (!file.Name.EndsWith(CaptionExtension, StringComparison.OrdinalIgnoreCase))
                problems.Add(new DatasetProblem(file.Name, "ignored: neither an image nor a caption (.txt)."));
            else if (!imageStems.Contains(Stem(file.Name)))
                problems.Add(new DatasetProblem(file.Name, "ignored: a caption without an image of the same name."));
        }

        var result = new List<(DatasetFile, string)>();
        var seenStems = new HashSet<string>(StringComparer.Ordinal);
        foreach (var image in images)
        {
            string stem = Stem(image.Name);
            if (!seenStems.Add(stem))
            {
                problems.Add(new DatasetProblem(image.Name, $"skipped: another image is also named '{stem}.*'; its caption would be ambiguous."));
                continue;
            }
            if (!byName.TryGetValue(stem + CaptionExtension, out var captionFile))
            {
                problems.Add(new DatasetProblem(image.Name, $"missing caption: no {stem}{CaptionExtension}."));
                continue;
            }
            string caption = DecodeCaption(await source.ReadAsync(captionFile.Name, cancellationToken).ConfigureAwait(false));
            if (caption.Length == 0)
                problems.Add(new DatasetProblem(image.Name, $"missing caption: {captionFile.Name} is empty."));
            else
                result.Add((image, caption));
        }
        return result;
    }

    private static async Task<List<(DatasetFile File, string Caption)>> ImageFolderCaptionsAsync(IDatasetSource source, List<DatasetFile> files, List<DatasetProblem> problems, CancellationToken cancellationToken)
    {
        var byName = files.ToDictionary(f => f.Name, StringComparer.Ordinal);
        var captions = new Dictionary<string, string>(StringComparer.Ordinal);
        string text = DecodeCaption(await source.ReadAsync(MetadataFile, cancellationToken).ConfigureAwait(false), trim: false);
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].Trim();
            if (line.Length == 0)
                continue;
            string where = $"{MetadataFile}:{i + 1}";
            string? fileName = null, caption = null, problem = null;
            try
            {
                using var document = JsonDocument.Parse(line);
                var root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    problem = "not a JSON object.";
                else if (!root.TryGetProperty("file_name", out var nameElement) || nameElement.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(nameElement.GetString()))
                    problem = "no file_name.";
                else
                {
                    fileName = nameElement.GetString()!.Replace('\\', '/').TrimStart('.', '/');
                    if (!root.TryGetProperty("text", out var textElement) || textElement.ValueKind == JsonValueKind.Null)
                        problem = $"missing caption for {fileName}: no text.";
                    else if (textElement.ValueKind != JsonValueKind.String)
                        problem = $"the caption of {fileName} is not a string.";
                    else
                        caption = textElement.GetString()!.Trim();
                }
            }
            catch (JsonException e)
            {
                problem = $"not valid JSON ({e.Message}).";
            }

            if (problem is null && fileName is not null && captions.ContainsKey(fileName))
                problem = $"{fileName} is listed twice; the first line is used.";
            else if (problem is null && fileName is not null && !byName.ContainsKey(fileName))
                problem = $"{fileName} is listed but not in the dataset.";
            if (problem is not null)
                problems.Add(new DatasetProblem(where, "skipped: " + problem));
            else
                captions[fileName!] = caption!;
        }

        var result = new List<(DatasetFile, string)>();
        foreach (var file in files.Where(f => f.Name != MetadataFile))
        {
            if (!IsImage(file.Name))
            {
                if (!captions.ContainsKey(file.Name))
                    problems.Add(new DatasetProblem(file.Name, "ignored: not an image."));
                else
                    problems.Add(new DatasetProblem(file.Name, "skipped: listed in metadata.jsonl but not an image."));
                continue;
            }
            if (!captions.TryGetValue(file.Name, out var caption))
                problems.Add(new DatasetProblem(file.Name, $"missing caption: not in {MetadataFile}."));
            else if (caption.Length == 0)
                problems.Add(new DatasetProblem(file.Name, "missing caption: its text is empty."));
            else
                result.Add((file, caption));
        }
        return result;
    }

    private static async Task<(DatasetItem? Item, DatasetProblem? Problem)?> CheckImageAsync(IDatasetSource source, DatasetFile file, string caption, DatasetLimits limits, CancellationToken cancellationToken)
    {
        if (file.Size > limits.MaxImageBytes)
            return (null, new DatasetProblem(file.Name, $"oversized: {file.Size} bytes (the limit is {limits.MaxImageBytes})."));
        byte[] bytes = await source.ReadAsync(file.Name, cancellationToken).ConfigureAwait(false);
        if (bytes.Length > limits.MaxImageBytes)
            return (null, new DatasetProblem(file.Name, $"oversized: {bytes.Length} bytes (the limit is {limits.MaxImageBytes})."));
        IImageInfo? info;
        try
        {
            info = DatasetImages.Identify(bytes).Info;
        }
        catch (Exception e) when (e is ImageFormatException or NotSupportedException or InvalidDataException or ArgumentException or EndOfStreamException)
        {
            return (null, new DatasetProblem(file.Name, $"undecodable: {e.Message}"));
        }
        if (info is null)
            return (null, new DatasetProblem(file.Name, $"undecodable: not an image in a format datasets may use ({string.Join(", ", DatasetImages.Formats)})."));
        if (info.Width <= 0 || info.Height <= 0)
            return (null, new DatasetProblem(file.Name, $"undecodable: the header gives a size of {info.Width}×{info.Height}."));
        if ((long)info.Width * info.Height > limits.MaxImagePixels)
            return (null, new DatasetProblem(file.Name, $"oversized: {info.Width}×{info.Height} pixels (the limit is {limits.MaxImagePixels})."));
        return (new DatasetItem(file.Name, caption, TrainingHashes.Of(bytes), info.Width, info.Height, bytes.Length), null);
    }

    private static string Stem(string name)
    {
        int dot = name.LastIndexOf('.');
        return dot > name.LastIndexOf('/') ? name[..dot] : name;
    }

    private static string DecodeCaption(byte[] bytes, bool trim = true)
    {
        string text = new UTF8Encoding(false).GetString(bytes).TrimStart('\uFEFF');
        return trim ? text.Trim() : text;
    }
}
