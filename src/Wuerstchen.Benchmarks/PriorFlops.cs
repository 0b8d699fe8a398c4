using Wuerstchen.Models.StageC;

namespace Wuerstchen.Benchmarks;

/// <summary>Multiply-add FLOPs (2 per MAC) of one Stage C forward pass, counted layer by layer from the configuration.</summary>
public static class PriorFlops
{
    public static double Forward(WuerstchenPriorConfig config, long batch, long height, long width, long textLength)
    {
        double c = config.C, n = height * width, l = textLength;
        double projection = 2 * n * config.CIn * c;
        double condMapper = 2 * l * (config.CCond * c + c * c);
        double resBlock = 2 * n * c * 9 + 2 * n * (c * 4 * c) * 2;
        double timestepBlock = 2 * config.CR * 2 * c;
        double attnBlock = 2 * l * c * c          // kv_mapper
                           + 2 * n * c * c        // to_q
                           + 2 * 2 * (n + l) * c * c  // to_k, to_v
                           + 2 * 2 * n * (n + l) * c  // QKᵀ and AV
                           + 2 * n * c * c;       // to_out
        double output = 2 * n * c * config.CIn * 2;
        return batch * (projection + condMapper + config.Depth * (resBlock + timestepBlock + attnBlock) + output);
    }
}
