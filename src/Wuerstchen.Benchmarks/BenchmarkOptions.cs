using System.Globalization;

namespace Wuerstchen.Benchmarks;

/// <summary>Command line: <c>[--sizes 1024,512] [--repeats 2] [--tiny] [--markdown FILE]</c>.</summary>
public sealed record BenchmarkOptions
{
    public IReadOnlyList<int> Sizes { get; init; } = [1024, 512];

    /// <summary>Measured runs per figure, after one warm-up run; the median is reported.</summary>
    public int Repeats { get; init; } = 2;

    /// <summary>Tiny configurations instead of the published ones: a quick check that the benchmark itself works.</summary>
    public bool Tiny { get; init; }

    public string? MarkdownPath { get; init; }

    public static BenchmarkOptions Parse(IReadOnlyList<string> args)
    {
        var options = new BenchmarkOptions();
        for (int i = 0; i < args.Count; i++)
        {
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            options = args[i] switch
            {
                "--sizes" => options with { Sizes = Value().Split(',').Select(ParseSize).ToArray() },
                "--repeats" => options with { Repeats = int.Parse(Value(), CultureInfo.InvariantCulture) is var r and > 0 ? r : throw new ArgumentException("--repeats must be positive.") },
                "--tiny" => options with { Tiny = true },
                "--markdown" => options with { MarkdownPath = Value() },
                _ => throw new ArgumentException($"Unknown option '{args[i]}'. Usage: [--sizes 1024,512] [--repeats 2] [--tiny] [--markdown FILE]"),
            };
        }
        return options;
    }

    private static int ParseSize(string text)
    {
        int size = int.Parse(text, CultureInfo.InvariantCulture);
        Models.Pipelines.ImageSize.Validate(size, size);
        return size;
    }
}
