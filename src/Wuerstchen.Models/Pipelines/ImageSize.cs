namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// Image sizes the full cascade can make: multiples of 128 px (docs/upstream.md, "Image sizes"). Other sizes give Stage B latents the
/// decoder's U-Net cannot take; the reference fails inside the model, this says which sizes would work.
/// </summary>
public static class ImageSize
{
    public const int Grid = 128;

    /// <summary>Throws an <see cref="ArgumentException"/> naming the nearest valid sizes when either side is off the grid.</summary>
    public static void Validate(int width, int height)
    {
        var problems = new List<string>();
        Check("width", width, problems);
        Check("height", height, problems);
        if (problems.Count > 0)
            throw new ArgumentException(string.Join(" ", problems));
    }

    /// <summary>The valid sizes nearest to <paramref name="size"/>: the multiple of 128 below (if positive) and above.</summary>
    public static IReadOnlyList<int> Nearest(int size)
    {
        if (size > 0 && size % Grid == 0)
            return [size];
        int below = size / Grid * Grid;
        int above = below + Grid;
        return below >= Grid && below != size ? [below, above] : [Math.Max(above, Grid)];
    }

    private static void Check(string name, int size, List<string> problems)
    {
        if (size <= 0)
            problems.Add($"The {name} must be positive; got {size}.");
        else if (size % Grid != 0)
            problems.Add($"The {name} {size} px is not a multiple of {Grid}; the nearest valid {name}s are {string.Join(" and ", Nearest(size))}.");
    }
}
