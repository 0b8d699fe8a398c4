using System.Text.RegularExpressions;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Schedulers;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Schedulers;

public sealed class DdpmWuerstchenSchedulerTests
{
    private static DdpmWuerstchenScheduler FixtureScheduler() =>
        DdpmWuerstchenScheduler.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("scheduler"));

    [Fact]
    public void AlphaCumprodMatchesTheReferenceOnItsGrid()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("scheduler");
        var scheduler = FixtureScheduler();
        Parity.AssertClose(scheduler.AlphaCumprod(reference.Load("t_grid")), reference.Load("alpha_cumprod"), Parity.SchedulerTolerance, "alpha_cumprod");
    }

    [Fact]
    public void TimestepsFromACountMatchTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("scheduler");
        string key = reference.Tensors.Keys.Single(k => Regex.IsMatch(k, @"^timesteps_\d+$"));
        var expected = reference.Load(key);
        var scheduler = FixtureScheduler();
        scheduler.SetTimesteps((int)expected.shape[0] - 1);
        Parity.AssertEqual(scheduler.Timesteps, expected, key);
    }

    [Fact]
    public void DefaultStageCTimestepsMatchTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("scheduler");
        var scheduler = FixtureScheduler();
        scheduler.SetTimesteps(DdpmWuerstchenScheduler.DefaultStageCTimesteps);
        Parity.AssertEqual(scheduler.Timesteps, reference.Load("timesteps_default_stage_c"), "timesteps_default_stage_c");
        Assert.Equal(29, scheduler.StepCount);
    }

    [Fact]
    public void AddNoiseMatchesTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("scheduler");
        // The fixture noises x0 with model_output as ε.
        var noisy = FixtureScheduler().AddNoise(reference.Load("x0"), reference.Load("model_output"), reference.Load("add_noise_t"));
        Parity.AssertClose(noisy, reference.Load("add_noise_out"), Parity.SchedulerTolerance, "add_noise");
    }

    [Fact]
    public void ChainedStepsWithTheRecordedNoiseMatchTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("scheduler");
        var timesteps = reference.Load("timesteps_default_stage_c");
        var scheduler = FixtureScheduler();
        scheduler.SetTimesteps(timesteps.data<float>().Select(t => (double)t).ToArray());
        int steps = reference.Tensors.Keys.Count(k => Regex.IsMatch(k, @"^step\.\d+\.prev_sample$"));
        Assert.Equal(scheduler.StepCount, steps);

        var modelOutput = reference.Load("model_output");
        var sample = reference.Load("sample");
        for (int i = 0; i < steps; i++)
        {
            var t = timesteps[i].expand(sample.shape[0]);
            sample = scheduler.Step(modelOutput, t, sample, reference.Load($"step.{i}.noise"));
            Parity.AssertClose(sample, reference.Load($"step.{i}.prev_sample"), Parity.SchedulerTolerance, $"step {i}");
        }
    }

    [Fact]
    public void ThePreparedScheduleAlsoMatchesTheReferenceChain()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("scheduler");
        var timesteps = reference.Load("timesteps_default_stage_c");
        var scheduler = FixtureScheduler();
        scheduler.SetTimesteps(timesteps.data<float>().Select(t => (double)t).ToArray());
        var modelOutput = reference.Load("model_output");
        var sample = reference.Load("sample");
        using var schedule = scheduler.Prepare(sample.shape[0], (int)sample.dim(), CPU);
        Assert.Equal(scheduler.StepCount, schedule.StepCount);
        for (int i = 0; i < schedule.StepCount; i++)
        {
            Parity.AssertEqual(schedule.Ratio[i], timesteps[i].expand(sample.shape[0]), $"ratio of step {i}");
            sample = schedule.Step(i, modelOutput, sample, reference.Load($"step.{i}.noise"));
            Parity.AssertClose(sample, reference.Load($"step.{i}.prev_sample"), Parity.SchedulerTolerance, $"prepared step {i}");
        }
    }

    /// <summary>The prepared coefficients are the same float32 operations as a step's own: bit for bit, in every dtype.</summary>
    [Theory]
    [InlineData(ScalarType.Float32, 0)]
    [InlineData(ScalarType.BFloat16, 0)]
    [InlineData(ScalarType.Float32, 12)]
    [InlineData(ScalarType.Float16, 7)]
    public void APreparedStepEqualsAStepBitForBit(ScalarType dtype, int steps)
    {
        using var scope = NewDisposeScope();
        var scheduler = new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig());
        if (steps == 0)
            scheduler.SetTimesteps(DdpmWuerstchenScheduler.DefaultStageCTimesteps);
        else
            scheduler.SetTimesteps(steps);
        using var generator = new Generator(11, CPU);
        var sample = randn([3, 4, 5, 6], generator: generator).to(dtype);
        var viaStep = sample;
        using var schedule = scheduler.Prepare(3, 4, CPU);
        for (int i = 0; i < scheduler.StepCount; i++)
        {
            var modelOutput = randn([3, 4, 5, 6], generator: generator).to(dtype);
            var noise = randn([3, 4, 5, 6], generator: generator).to(dtype);
            viaStep = scheduler.Step(modelOutput, scheduler.Timesteps[i].expand(3), viaStep, noise);
            sample = schedule.Step(i, modelOutput, sample, noise);
            Assert.Equal(dtype, sample.dtype);
            Parity.AssertEqual(sample, viaStep, $"step {i} in {dtype}");
        }
    }

    [Fact]
    public void LastStepAddsNoNoise()
    {
        using var scope = NewDisposeScope();
        var scheduler = new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig());
        scheduler.SetTimesteps([1.0, 0.5, 0.0]);
        var sample = ones(1, 2, 2);
        var output = full(new long[] { 1, 2, 2 }, 0.1f);
        var t = tensor(new[] { 0.5f });
        var quiet = scheduler.Step(output, t, sample, zeros(1, 2, 2));
        var noisy = scheduler.Step(output, t, sample, full(new long[] { 1, 2, 2 }, 100f));
        Parity.AssertEqual(noisy, quiet, "final step with and without noise");
    }

    [Theory]
    [InlineData(1.0 / 12, 0.98003167)]
    [InlineData(0.25, 0.84701222)]
    [InlineData(0.5, 0.49384364)]
    [InlineData(2.0 / 3, 0.24644819)]
    [InlineData(0.75, 0.14427207)]
    [InlineData(0.0, 0.9999)]
    [InlineData(1.0, 0.0001)]
    public void AlphaCumprodHasTheSpecValues(double t, double expected)
    {
        var scheduler = new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig());
        using var value = scheduler.AlphaCumprod(tensor(new[] { (float)t }));
        Assert.Equal(expected, value.item<float>(), 6);
    }

    [Fact]
    public void RejectsSchedulesThatCannotBeSampled()
    {
        var scheduler = new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig());
        Assert.Contains("strictly decrease", Assert.Throws<ArgumentException>(() => scheduler.SetTimesteps([1.0, 0.5, 0.7, 0.0])).Message);
        Assert.Contains("[0, 1]", Assert.Throws<ArgumentException>(() => scheduler.SetTimesteps([1.5, 0.0])).Message);
        Assert.Contains("at least two", Assert.Throws<ArgumentException>(() => scheduler.SetTimesteps([1.0])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.SetTimesteps(0));
        Assert.Throws<InvalidOperationException>(() => new DdpmWuerstchenScheduler(new DdpmWuerstchenSchedulerConfig()).Timesteps);
    }
}
