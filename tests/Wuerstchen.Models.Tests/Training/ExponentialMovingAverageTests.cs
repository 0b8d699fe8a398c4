using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Training;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Training;

public sealed class ExponentialMovingAverageTests
{
    [Fact]
    public void TheDiffusersRampCopiesFirstThenFollowsOnePlusSOverTenPlusS()
    {
        var parameter = new Parameter(tensor(new[] { 0f }));
        using var ema = new ExponentialMovingAverage([("w", parameter)], new EmaSettings { Decay = 0.9999, UpdateEvery = 1, Warmup = true });
        var decays = new List<double>();
        for (int step = 1; step <= 3; step++)
        {
            using (no_grad())
                parameter.fill_(step);
            decays.Add(ema.AfterStep(step)!.Value);
        }
        Assert.Equal([0, 2.0 / 11, 3.0 / 12], decays);
        // 1 → 1·2/11 + 2·9/11 → that·3/12 + 3·9/12
        double expected = (1 * 2.0 / 11 + 2 * 9.0 / 11) * 3.0 / 12 + 3 * 9.0 / 12;
        Assert.Equal(expected, ema.Averages["w"].item<float>(), 5);
        Assert.Equal(3, ema.Updates);
    }

    [Fact]
    public void TheBlogsEmaUpdatesEveryHundredStepsWithBetaPointNine()
    {
        var parameter = new Parameter(tensor(new[] { 10f }));
        using var ema = new ExponentialMovingAverage([("w", parameter)], new EmaSettings { Decay = 0.9, UpdateEvery = 100, Warmup = false });
        using (no_grad())
            parameter.fill_(20);
        Assert.Null(ema.AfterStep(99));
        Assert.Equal(0.9, ema.AfterStep(100));
        Assert.Equal(11f, ema.Averages["w"].item<float>(), 5);
    }

    [Fact]
    public void LoadingRejectsWeightsOfAnotherShape()
    {
        var parameter = new Parameter(zeros(3));
        using var ema = new ExponentialMovingAverage([("w", parameter)], new EmaSettings());
        var error = Assert.Throws<InvalidDataException>(() => ema.Load(new Dictionary<string, Tensor> { ["w"] = zeros(4), ["x"] = zeros(1) }, 1));
        Assert.Contains("'w' has shape [4]", error.Message);
        Assert.Contains("unexpected 'x'", error.Message);
    }
}
