using Wuerstchen.Models.Blocks;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Blocks;

public sealed class GlobalResponseNormTests
{
    private static (GlobalResponseNorm Module, Tensor Gamma, Tensor Beta) Build(long channels, ScalarType dtype, Generator generator)
    {
        var module = new GlobalResponseNorm(channels, dtype: dtype);
        var state = module.state_dict();
        using (no_grad())
        {
            state["gamma"].copy_(randn([1, 1, 1, channels], generator: generator) * 0.5);
            state["beta"].copy_(randn([1, 1, 1, channels], generator: generator) * 0.1);
        }
        return (module, state["gamma"], state["beta"]);
    }

    private static double RelativeMaxError(Tensor actual, Tensor expected)
    {
        using var scope = NewDisposeScope();
        var a = actual.to(float64);
        var b = expected.to(float64);
        return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
    }

    [Fact]
    public void InFloat32TheOneAddcmulFormEqualsTheReferenceFormulaToRounding()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(5, CPU);
        var (module, gamma, beta) = Build(48, ScalarType.Float32, generator);
        var x = randn([2, 5, 7, 48], generator: generator) * 3;
        double error = RelativeMaxError(module.forward(x), GlobalResponseNorm.Reference(x, gamma, beta));
        Assert.True(error < 1e-6, $"float32: relative max error {error:E2}");
    }

    [Fact]
    public void InBfloat16ItStaysWithinTheDocumentedToleranceOfTheReferenceFormula()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(6, CPU);
        var (module, gamma, beta) = Build(64, ScalarType.BFloat16, generator);
        var x = (randn([2, 6, 6, 64], generator: generator) * 3).to(ScalarType.BFloat16);

        var output = module.forward(x);
        Assert.Equal(ScalarType.BFloat16, output.dtype);
        var exact = GlobalResponseNorm.Reference(x.to(float64), gamma.to(float64), beta.to(float64));
        double error = RelativeMaxError(output, exact);
        double referenceError = RelativeMaxError(GlobalResponseNorm.Reference(x, gamma, beta), exact);
        Assert.True(error <= GlobalResponseNorm.BFloat16Tolerance,
            $"bfloat16: relative max error {error:E2} against the exact formula (the reference formula in bfloat16: {referenceError:E2})");
        Assert.True(RelativeMaxError(output, GlobalResponseNorm.Reference(x, gamma, beta)) <= GlobalResponseNorm.BFloat16Tolerance,
            "bfloat16: this and the reference formula, both in bfloat16, differ by more than the tolerance");
    }
}
