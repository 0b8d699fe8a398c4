using Wuerstchen.Models.StageC;

namespace Wuerstchen.Benchmarks;

/// <summary>Multiply-add FLOPs (2 per MAC) of Stage C, counted layer by layer from the configuration.</summary>
public static class PriorFlops
{
    /// <summary>One full forward pass from the text states (<c>WuerstchenPrior.forward</c>).</summary>
    public static double Forward(WuerstchenPriorConfig config, long batch, long height, long width, long textLength) =>
        Step(config, batch, height, width, textLength) + Condition(config, batch, textLength);

    /// <summary>The text's part, which sampling maps once per generation: <c>cond_mapper</c> and every block's <c>kv_mapper</c>.</summary>
    public static double Condition(WuerstchenPriorConfig config, long batch, long textLength)
    {
        double c = config.C, l = textLength;
        return batch * (2 * l * (config.CCond * c + c * c) + config.Depth * 2 * l * c * c);
    }

    /// <summary>One sampling step's forward pass with the condition already mapped.</summary>
    public static double Step(WuerstchenPriorConfig config, long batch, long height, long width, long textLength)
    {
        double c = config.C, n = height * width, l = textLength;
        double projection = 2 * n * config.CIn * c;
        double resBlock = 2 * n * c * 9 + 2 * n * (c * 4 * c) * 2;
        double timestepBlock = 2 * config.CR * 2 * c;
        double attnBlock = 2 * n * c * c          // to_q
                           + 2 * 2 * (n + l) * c * c  // to_k, to_v
                           + 2 * 2 * n * (n + l) * c  // QKᵀ and AV
                           + 2 * n * c * c;       // to_out
        double output = 2 * n * c * config.CIn * 2;
        return batch * (projection + config.Depth * (resBlock + timestepBlock + attnBlock) + output);
    }

    /// <summary>
    /// The same count from a built model's parameter shapes (what each weight is applied to, by its checkpoint key),
    /// plus the attention products, which have no weights: a check of <see cref="Forward"/> against the layers as built.
    /// </summary>
    public static double FromParameters(IEnumerable<(string Name, long[] Shape)> parameters, long batch, long height, long width, long textLength)
    {
        double n = height * width, l = textLength, total = 0;
        foreach (var (name, shape) in parameters)
        {
            if (!name.EndsWith(".weight", StringComparison.Ordinal))
                continue;
            double macs = shape.Aggregate(1.0, (a, b) => a * b);
            string layer = name[..^".weight".Length];
            double positions =
                layer is "projection" or "out.1" || layer.EndsWith(".depthwise", StringComparison.Ordinal)
                || layer.EndsWith(".channelwise.0", StringComparison.Ordinal) || layer.EndsWith(".channelwise.4", StringComparison.Ordinal)
                || layer.EndsWith(".attention.to_q", StringComparison.Ordinal) || layer.EndsWith(".attention.to_out.0", StringComparison.Ordinal) ? n
                : layer.EndsWith(".attention.to_k", StringComparison.Ordinal) || layer.EndsWith(".attention.to_v", StringComparison.Ordinal) ? n + l
                : layer.StartsWith("cond_mapper.", StringComparison.Ordinal) || layer.EndsWith(".kv_mapper.1", StringComparison.Ordinal) ? l
                : layer.EndsWith(".mapper", StringComparison.Ordinal) ? 1
                : throw new InvalidOperationException($"No FLOP rule for the weight '{name}'.");
            total += 2 * positions * macs;
            if (layer.EndsWith(".attention.to_q", StringComparison.Ordinal))
                total += 2 * 2 * n * (n + l) * shape[0]; // QKᵀ and AV over all heads: (n × c)·(c × (n + l)) and (n × (n + l))·((n + l) × c)
        }
        return batch * total;
    }
}
