using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Blocks;

/// <summary>ConvNeXt-V2 global response normalisation on NHWC input; gamma and beta are (1, 1, 1, C) (spec §1.3).</summary>
public sealed class GlobalResponseNorm : nn.Module<Tensor, Tensor>
{
    private readonly Parameter gamma;
    private readonly Parameter beta;

    public GlobalResponseNorm(long dim) : base(nameof(GlobalResponseNorm))
    {
        gamma = nn.Parameter(zeros(1, 1, 1, dim));
        beta = nn.Parameter(zeros(1, 1, 1, dim));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var aggregate = linalg.vector_norm(x, ord: 2, dims: [1, 2], keepdim: true);
        var normalised = aggregate / (aggregate.mean([-1], keepdim: true) + 1e-6);
        return (gamma * (x * normalised) + beta + x).MoveToOuterDisposeScope();
    }
}
