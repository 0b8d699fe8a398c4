using System.Text.Json;
using Wuerstchen.Models.Effnet;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Schedulers;
using Wuerstchen.Models.StageC;
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
}
