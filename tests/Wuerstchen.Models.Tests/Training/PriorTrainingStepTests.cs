using System.Text.Json;
using Wuerstchen.Models.Blocks;
using Wuerstchen.Models.Effnet;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageC;
using Wuerstchen.Models.Text;
using Wuerstchen.Models.Training;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Training;

public sealed class PriorTrainingStepTests
{
    private static OptimizerSettings SettingsOf(JsonElement optimizer)
    {
        Assert.Equal("AdamW", optimizer.GetProperty("name").GetString());
        var betas = optimizer.GetProperty("betas").EnumerateArray().Select(b => b.GetDouble()).ToArray();
        return new OptimizerSettings
        {
            LearningRate = optimizer.GetProperty("lr").GetDouble(),
            Beta1 = betas[0],
            Beta2 = betas[1],
            Epsilon = optimizer.GetProperty("eps").GetDouble(),
            WeightDecay = optimizer.GetProperty("weight_decay").GetDouble(),
            MaxGradNorm = optimizer.GetProperty("clip_grad_norm").GetDouble(),
        };
    }

    [Fact]
    public void OneStepMatchesTheReferenceForwardLossGradientsClipAndAdamW()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("train_step");
        using var optimizer = JsonDocument.Parse(reference.Metadata["optimizer"]);
        var repository = ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline"));
        var prior = WuerstchenPrior.FromComponent(repository.Component("prior"));
        var scheduler = DdpmWuerstchenScheduler.FromComponent(repository.Component("scheduler"));
        var parameters = prior.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        string[] tracked = reference.Tensors.Keys.Where(k => k.StartsWith("grad.", StringComparison.Ordinal)).Select(k => k["grad.".Length..]).ToArray();
        Assert.NotEmpty(tracked);
        foreach (string name in tracked)
            Parity.AssertEqual(parameters[name], reference.Load($"before.{name}"), $"{name} before the step");

        var latents = reference.Load("latents");
        Parity.AssertClose(EfficientNetEncoder.ToPriorLatents(reference.Load("image_embeds")), latents, Parity.ModuleTolerance, "latents = (image_embeds + 1) / 42");
        var text = reference.Load("text");
        var noise = reference.Load("noise");
        var t = reference.Load("timesteps");

        using var step = new PriorTrainingStep(prior, scheduler, SettingsOf(optimizer.RootElement));
        var (noisy, prediction) = step.Predict(latents, text, noise, t);
        Parity.AssertClose(noisy, reference.Load("noisy_latents"), Parity.ModuleTolerance, "noisy_latents");
        Parity.AssertClose(prediction, reference.Load("pred"), Parity.ModuleTolerance, "pred");

        double loss = step.AccumulateGradients(latents, text, noise, t);
        Assert.Equal(reference.Load("loss").item<float>(), loss, 1e-4 * Math.Max(1, Math.Abs(loss)));
        foreach (string name in tracked)
            Parity.AssertClose(parameters[name].grad!, reference.Load($"grad.{name}"), Parity.ModuleTolerance, $"gradient of {name}");

        double norm = step.ApplyGradients();
        double expectedNorm = reference.Load("grad_norm_before_clip").item<float>();
        Assert.True(Math.Abs(norm - expectedNorm) <= 1e-4 * Math.Max(1, expectedNorm), $"grad norm {norm} vs {expectedNorm}");
        foreach (string name in tracked)
            Parity.AssertClose(parameters[name], reference.Load($"after.{name}"), Parity.SchedulerTolerance, $"{name} after the AdamW step");
    }
    [Fact]
    public void AStepAfterRestoringTheOptimizerStateAndSeededDropoutMatchesTheUninterruptedStepBitForBit() =>
        AssertResumedStepMatches(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")));

    /// <summary>The same on a prior of other widths (c_in, c_cond, c) and another text length: no shape comes from one fixture set.</summary>
    [Fact]
    public void TheResumedStepMatchesForAPriorOfOtherWidths()
    {
        using var temp = new TempDirectory();
        string fixture = ParityFixtures.PathOf("models/prior-pipeline");
        File.Copy(Path.Combine(fixture, "model_index.json"), temp.File("model_index.json"));
        Directory.CreateDirectory(temp.File("scheduler"));
        File.Copy(Path.Combine(fixture, "scheduler", "scheduler_config.json"), temp.File("scheduler/scheduler_config.json"));
        Directory.CreateDirectory(temp.File("prior"));
        File.WriteAllText(temp.File("prior/config.json"), "{\"_class_name\": \"WuerstchenPrior\", \"c\": 24, \"c_cond\": 12, \"c_in\": 8, \"c_r\": 32, \"depth\": 1, \"nhead\": 2, \"dropout\": 0.1}");
        using (var scope = NewDisposeScope())
        {
            var other = new WuerstchenPrior(WuerstchenPriorConfig.Read(temp.File("prior/config.json")));
            SafetensorsWriter.Save(temp.File("prior/diffusion_pytorch_model.safetensors"), other.state_dict().ToDictionary(p => p.Key, p => p.Value));
        }
        Directory.CreateDirectory(temp.File("text_encoder"));
        File.WriteAllText(temp.File("text_encoder/config.json"), "{\"hidden_size\": 12, \"max_position_embeddings\": 21, \"num_attention_heads\": 2, \"num_hidden_layers\": 1, \"intermediate_size\": 24, \"vocab_size\": 100}");

        AssertResumedStepMatches(ModelRepository.Open(temp.Path));
    }

    private static void AssertResumedStepMatches(ModelRepository repository)
    {
        var scheduler = DdpmWuerstchenScheduler.FromComponent(repository.Component("scheduler"));
        var settings = new OptimizerSettings { LearningRate = 1e-3, WeightDecay = 0.01 };

        // Three steps straight through, with dropout drawing from a seeded generator.
        var straight = WuerstchenPrior.FromComponent(repository.Component("prior"));
        straight.train();
        using var straightStep = new PriorTrainingStep(straight, scheduler, settings);
        using var straightDropout = new SeededNoise(5);
        for (int i = 0; i < 3; i++)
            TakeStep(repository, straightStep, straightDropout, i);

        // Two steps, then everything saved, a fresh model and optimizer restored from it, and the third step.
        var first = WuerstchenPrior.FromComponent(repository.Component("prior"));
        first.train();
        using var firstStep = new PriorTrainingStep(first, scheduler, settings);
        using var firstDropout = new SeededNoise(5);
        for (int i = 0; i < 2; i++)
            TakeStep(repository, firstStep, firstDropout, i);
        var weights = first.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());
        var optimizerState = firstStep.SaveOptimizerState();
        byte[] dropoutState = firstDropout.GetState();

        var resumed = WuerstchenPrior.FromComponent(repository.Component("prior"));
        resumed.load_state_dict(weights);
        resumed.train();
        using var resumedStep = new PriorTrainingStep(resumed, scheduler, settings);
        resumedStep.LoadOptimizerState(optimizerState);
        using var resumedDropout = new SeededNoise(0);
        resumedDropout.SetState(dropoutState);
        TakeStep(repository, resumedStep, resumedDropout, 2);

        var expected = straight.state_dict();
        foreach (var (name, value) in resumed.state_dict())
            Parity.AssertEqual(value, expected[name], name);
        var expectedState = straightStep.SaveOptimizerState();
        foreach (var (name, value) in resumedStep.SaveOptimizerState())
            Parity.AssertEqual(value.to(float64), expectedState[name].to(float64), name);
    }

    [Fact]
    public void RestoringAnOptimizerStateThatDoesNotFitNamesTheProblems()
    {
        var repository = ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline"));
        var prior = WuerstchenPrior.FromComponent(repository.Component("prior"));
        using var step = new PriorTrainingStep(prior, DdpmWuerstchenScheduler.FromComponent(repository.Component("scheduler")), new OptimizerSettings());
        var state = step.SaveOptimizerState();
        string victim = state.Keys.First(k => k.StartsWith("exp_avg.", StringComparison.Ordinal));
        state.Remove(victim);
        state["exp_avg.nothing"] = zeros(1);
        var error = Assert.Throws<InvalidDataException>(() => step.LoadOptimizerState(state));
        Assert.Contains($"missing '{victim}'", error.Message);
        Assert.Contains("unexpected 'exp_avg.nothing'", error.Message);
    }

    [Fact]
    public void Bfloat16ComputeKeepsFloat32MasterWeightsAndMomentsAndTracksTheFloat32Step()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("train_step");
        var repository = ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline"));
        var scheduler = DdpmWuerstchenScheduler.FromComponent(repository.Component("scheduler"));
        var (latents, text, noise, t) = (reference.Load("latents"), reference.Load("text"), reference.Load("noise"), reference.Load("timesteps"));

        var full = WuerstchenPrior.FromComponent(repository.Component("prior"));
        using var fullStep = new PriorTrainingStep(full, scheduler, new OptimizerSettings());
        double fullLoss = fullStep.Step(latents, text, noise, t).Loss;

        var mixed = WuerstchenPrior.FromComponent(repository.Component("prior"));
        var before = mixed.state_dict().ToDictionary(p => p.Key, p => p.Value.detach().clone());
        using var mixedStep = new PriorTrainingStep(mixed, scheduler, new OptimizerSettings(), ScalarType.BFloat16);
        double mixedLoss = mixedStep.Step(latents, text, noise, t).Loss;

        Assert.Equal(fullLoss, mixedLoss, 0.05 * fullLoss);
        Assert.All(mixed.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.All(mixedStep.SaveOptimizerState().Where(e => !e.Key.StartsWith("step.", StringComparison.Ordinal)), e => Assert.Equal(ScalarType.Float32, e.Value.dtype));
        var expected = full.state_dict();
        foreach (var (name, value) in mixed.state_dict())
        {
            Assert.False(value.allclose(before[name], 0, 0), $"{name} did not change");
            // One AdamW step moves each weight by about the learning rate, whatever the gradient's precision.
            Assert.True((value - expected[name]).abs().max().item<float>() < 2.5e-4, $"{name} moved unlike the float32 step");
        }
    }

    /// <summary>
    /// One step on seeded random data shaped by the fixture's configs: latents of the prior's <c>c_in</c> channels, text
    /// states of its <c>c_cond</c> width and the text encoder's sequence length.
    /// </summary>
    private static void TakeStep(ModelRepository repository, PriorTrainingStep step, SeededNoise dropout, int index)
    {
        using var scope = NewDisposeScope();
        var prior = WuerstchenPriorConfig.Read(repository.Component("prior").ConfigPath);
        int sequence = ClipTextConfig.Read(repository.Component("text_encoder").ConfigPath).MaxPositionEmbeddings;
        using var data = new SeededNoise((ulong)(100 + index));
        var latents = data.Randn([2, prior.CIn, 3, 3]) * 0.05;
        var text = data.Randn([2, sequence, prior.CCond]);
        var noise = data.Randn([2, prior.CIn, 3, 3]);
        var t = data.Rand([2]);
        using (SeededDropout.Use(dropout.Generator))
            step.AccumulateGradients(latents, text, noise, t);
        step.ApplyGradients();
    }
}
