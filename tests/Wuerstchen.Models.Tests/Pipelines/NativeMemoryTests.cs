using TorchSharp;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Pipelines;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Pipelines;

[Collection(ProcessWideState.Name)]
public sealed class NativeMemoryTests
{
    [Fact]
    public void ASixtyStepPriorRunKeepsLiveTensorsAndResidentMemoryFlat()
    {
        using var pipeline = WuerstchenPriorPipeline.FromRepository(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")));
        var liveTensors = new long[61];
        var residentBytes = new long[61];
        using var noise = new SeededNoise(3);
        using var scope = NewDisposeScope();
        var settings = new PriorGenerationSettings { Prompts = ["a memory test"], Height = 256, Width = 256, Steps = 60, GuidanceScale = 4 };
        pipeline.Generate(settings, noise, step =>
        {
            liveTensors[step.Step] = DisposeScopeManager.Statistics.TensorStatistics.ThreadTotalLiveCount;
            residentBytes[step.Step] = ResidentBytes();
        }, TestContext.Current.CancellationToken);

        Assert.Equal(liveTensors[10], liveTensors[60]);
        long growth = residentBytes[60] - residentBytes[10];
        Assert.True(growth < 32L << 20, $"resident memory grew by {growth >> 20} MiB over 50 steps");
    }

    private static long ResidentBytes()
    {
        foreach (string line in File.ReadLines("/proc/self/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        throw new InvalidOperationException("No VmRSS in /proc/self/status.");
    }
}
