using Wuerstchen.Models.Loading;
using Wuerstchen.Models.StageA;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.StageA;

public sealed class PaellaVQModelTests
{
    private static PaellaVQModel LoadFixtureModel() =>
        PaellaVQModel.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/decoder-pipeline")).Component("vqgan"));

    [Fact]
    public void EncodeAndQuantizeMatchTheReference()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("vqgan");
        var model = LoadFixtureModel();

        using var noGrad = no_grad();
        var encoded = model.Encode(reference.Load("image"));
        Parity.AssertClose(encoded, reference.Load("encoded"), Parity.ModuleTolerance, "encoded");

        var (quantized, indices) = model.Quantize(reference.Load("encoded"));
        Parity.AssertEqual(indices, reference.Load("indices"), "indices");
        Parity.AssertClose(quantized, reference.Load("quantized"), Parity.ModuleTolerance, "quantized");
    }

    [Fact]
    public void DecodeMatchesTheReferenceWithAndWithoutQuantisation()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("vqgan");
        var model = LoadFixtureModel();

        using var noGrad = no_grad();
        Parity.AssertClose(model.Decode(reference.Load("latents")), reference.Load("decoded"), Parity.ModuleTolerance, "decoded");
        // The reference made decoded_quantized from the encoder's output, not from the random latents.
        Parity.AssertClose(model.Decode(reference.Load("encoded"), forceNotQuantize: false), reference.Load("decoded_quantized"), Parity.ModuleTolerance, "decoded_quantized");
    }

    [Fact]
    public void PipelineDecodeScalesTheLatentsByTheConfiguredFactorAndClamps()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("vqgan");
        var model = LoadFixtureModel();

        using var noGrad = no_grad();
        var image = model.Decode(reference.Load("latents") * model.ScaleFactor).clamp(0, 1);
        Parity.AssertClose(image, reference.Load("pipeline_image"), Parity.ModuleTolerance, "pipeline_image");
    }

    [Fact]
    public void EncodeShrinksAndDecodeRestoresTheImageSize()
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase("vqgan");
        var model = LoadFixtureModel();
        var image = reference.Load("image");
        long factor = model.Config.UpDownScaleFactor << (model.Config.Levels - 1);

        using var noGrad = no_grad();
        var latents = model.Encode(image);
        Assert.Equal([image.shape[0], model.Config.LatentChannels, image.shape[2] / factor, image.shape[3] / factor], latents.shape);
        Assert.Equal([image.shape[0], model.Config.OutChannels, image.shape[2], image.shape[3]], model.Decode(latents).shape);
    }

    [Fact]
    public void BuildsThePublishedConfigurationWithThePublishedCheckpointsTensorAndElementCounts()
    {
        using var scope = NewDisposeScope();
        var model = new PaellaVQModel(PaellaVQModelConfig.Published);
        var state = model.state_dict();
        // The published vqgan checkpoint (warp-ai/wuerstchen) holds every state-dict tensor of diffusers' PaellaVQModel
        // (docs/upstream.md): parameters, BatchNorm running stats and num_batches_tracked.
        Assert.Equal(122, state.Count);
        Assert.Equal(18_406_903L, state.Values.Sum(t => t.numel()));
        Assert.Equal(0.3764, model.ScaleFactor);
    }

    [Fact]
    public void RejectsAnEmbeddingWidthTooSmallForTheLevels()
    {
        var error = Assert.Throws<ModelConfigException>(() => new PaellaVQModelConfig { EmbedDim = 2, Levels = 3 }.Validate("vqgan/config.json"));
        Assert.Contains("embed_dim", error.Message);
    }
}
