using System.Text;

namespace Wuerstchen.Models.Loading;

/// <summary>A checkpoint whose keys or shapes do not match the model built from its configuration; lists every difference.</summary>
public sealed class CheckpointMismatchException : Exception
{
    private const int ListedPerKind = 40;

    public CheckpointMismatchException(string modelName, IReadOnlyList<string> checkpointFiles, IReadOnlyList<string> missing,
        IReadOnlyList<string> unexpected, IReadOnlyList<string> shapeMismatches)
        : base(Describe(modelName, checkpointFiles, missing, unexpected, shapeMismatches))
    {
        Missing = missing;
        Unexpected = unexpected;
        ShapeMismatches = shapeMismatches;
    }

    public IReadOnlyList<string> Missing { get; }

    public IReadOnlyList<string> Unexpected { get; }

    public IReadOnlyList<string> ShapeMismatches { get; }

    private static string Describe(string modelName, IReadOnlyList<string> files, IReadOnlyList<string> missing, IReadOnlyList<string> unexpected, IReadOnlyList<string> shapes)
    {
        var text = new StringBuilder($"The checkpoint {string.Join(", ", files.Select(f => $"'{f}'"))} does not fit {modelName}:");
        Append(text, "missing key", missing);
        Append(text, "unexpected key", unexpected);
        Append(text, "shape mismatch", shapes);
        return text.ToString();
    }

    private static void Append(StringBuilder text, string kind, IReadOnlyList<string> items)
    {
        if (items.Count == 0)
            return;
        text.Append($"{Environment.NewLine}  {items.Count} {kind}{(items.Count == 1 ? "" : "s")}:");
        foreach (string item in items.Take(ListedPerKind))
            text.Append($"{Environment.NewLine}    {item}");
        if (items.Count > ListedPerKind)
            text.Append($"{Environment.NewLine}    … and {items.Count - ListedPerKind} more");
    }
}
