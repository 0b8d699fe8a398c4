using TorchSharp;

namespace Wuerstchen.Models.Loading;

/// <summary>How checkpoint keys relate to the module's state-dict keys.</summary>
public sealed record StateDictLoadOptions
{
    /// <summary>Maps a checkpoint key to the module's key; null drops the key (e.g. a legacy buffer nobody reads).</summary>
    public Func<string, string?> MapKey { get; init; } = key => key;

    /// <summary>Floating-point parameters and buffers are converted to this type before the weights are copied in.</summary>
    public torch.ScalarType? DType { get; init; }
}

/// <summary>
/// Strict loading of a checkpoint into a module by exact key names: every missing key, unexpected key and shape
/// mismatch is collected and reported in one <see cref="CheckpointMismatchException"/> before anything is copied.
/// </summary>
public static class StateDictLoader
{
    public static void Load(torch.nn.Module module, CheckpointWeights weights, StateDictLoadOptions? options = null)
    {
        options ??= new StateDictLoadOptions();
        if (options.DType is { } dtype)
            module.to(dtype); // converts floating-point parameters and buffers only; num_batches_tracked stays int64

        var destination = module.state_dict();
        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        foreach (string key in weights.Keys.Order(StringComparer.Ordinal))
        {
            string? mapped = options.MapKey(key);
            if (mapped is null)
                continue;
            if (destination.ContainsKey(mapped))
                sources[mapped] = key;
            else
                unexpected.Add(key);
        }

        var missing = destination.Keys.Where(k => !sources.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var shapes = new List<string>();
        foreach (var (target, source) in sources.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            long[] expected = destination[target].shape;
            long[] actual = weights.Info(source).Shape;
            if (!expected.SequenceEqual(actual))
                shapes.Add($"{source}: checkpoint [{string.Join(", ", actual)}], model [{string.Join(", ", expected)}]");
        }

        if (missing.Count > 0 || unexpected.Count > 0 || shapes.Count > 0)
            throw new CheckpointMismatchException(module.GetName(), weights.FilePaths, missing, unexpected, shapes);

        using var noGrad = torch.no_grad();
        foreach (var (target, source) in sources)
        {
            using var value = weights.Load(source);
            destination[target].copy_(value);
        }
    }
}
