using TorchSharp;
using Wuerstchen.Models.IO;

namespace Wuerstchen.Models.Tests;

/// <summary>Comparisons with the reference's tensors, with the fixture README's tolerances.</summary>
public static class Parity
{
    /// <summary>Module outputs and intermediates.</summary>
    public const double ModuleTolerance = 1e-4;

    /// <summary>Scheduler and RNG values.</summary>
    public const double SchedulerTolerance = 1e-6;

    /// <summary>Pipeline trajectories.</summary>
    public const double PipelineTolerance = 1e-3;

    /// <summary>Asserts max |actual − expected| ≤ tolerance · max(1, max |expected|), naming <paramref name="what"/> on failure.</summary>
    public static void AssertClose(torch.Tensor actual, torch.Tensor expected, double tolerance, string what)
    {
        Assert.True(actual.shape.SequenceEqual(expected.shape),
            $"{what}: shape [{string.Join(", ", actual.shape)}] differs from the reference's [{string.Join(", ", expected.shape)}].");
        using var scope = torch.NewDisposeScope();
        var a = actual.detach().cpu().to(torch.float64);
        var b = expected.detach().cpu().to(torch.float64);
        double scale = Math.Max(1.0, b.abs().max().item<double>());
        var difference = (a - b).abs();
        double worst = difference.max().item<double>();
        Assert.False(double.IsNaN(worst), $"{what}: the result holds NaN.");
        if (worst > tolerance * scale)
        {
            long flatIndex = difference.flatten().argmax().item<long>();
            Assert.Fail($"{what}: max |a − b| = {worst:E3} at flat index {flatIndex} " +
                        $"(a = {a.flatten()[flatIndex].item<double>():G9}, b = {b.flatten()[flatIndex].item<double>():G9}), " +
                        $"over the tolerance {tolerance:E1} × {scale:G6}.");
        }
    }

    /// <summary>Asserts the two tensors hold exactly the same values.</summary>
    public static void AssertEqual(torch.Tensor actual, torch.Tensor expected, string what) => AssertClose(actual, expected, 0, what);

    /// <summary>Opens a fixture case file (<c>cases/NAME.safetensors</c>).</summary>
    public static SafetensorsFile OpenCase(string name) => SafetensorsFile.Open(ParityFixtures.PathOf($"cases/{name}.safetensors"));
}
