using System.Text.Json;
using TorchSharp;
using Wuerstchen.Models.Loading;
using Wuerstchen.Models.Text;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Tests.Text;

public sealed class ClipTextModelTests
{
    public static TheoryData<string, string> Encoders => new()
    {
        { "text_encoder_prior", "models/prior-pipeline" },
        { "text_encoder_decoder", "models/decoder-pipeline" },
    };

    [Theory]
    [MemberData(nameof(Encoders))]
    public void LastHiddenStateMatchesTheReference(string caseName, string repositoryFolder)
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase(caseName);
        var model = ClipTextModel.FromComponent(ModelRepository.Open(ParityFixtures.PathOf(repositoryFolder)).Component("text_encoder"));

        using var noGrad = no_grad();
        var hidden = model.forward(reference.Load("input_ids"), reference.Load("attention_mask"));
        Parity.AssertClose(hidden, reference.Load("last_hidden_state"), Parity.ModuleTolerance, $"{caseName} last_hidden_state");
    }

    [Theory]
    [MemberData(nameof(Encoders))]
    public void TheCasePromptsTokenizeToTheCaseIds(string caseName, string repositoryFolder)
    {
        using var scope = NewDisposeScope();
        using var reference = Parity.OpenCase(caseName);
        string[] prompts = JsonSerializer.Deserialize<string[]>(reference.Metadata["prompts"])!;
        var tokenizer = ClipTokenizer.FromDirectory(ParityFixtures.PathOf(repositoryFolder + "/tokenizer"));
        var ids = reference.Load("input_ids");
        var mask = reference.Load("attention_mask");
        Assert.Equal(prompts.Length, ids.shape[0]);
        for (int i = 0; i < prompts.Length; i++)
        {
            var tokens = tokenizer.EncodeForModel(prompts[i], (int)ids.shape[1]);
            Assert.Equal(ids[i].data<long>().ToArray(), tokens.InputIds);
            Assert.Equal(mask[i].data<long>().ToArray(), tokens.AttentionMask);
        }
    }

    [Fact]
    public void PaddingMaskIsolatesTheRealTokensFromThePadding()
    {
        using var scope = NewDisposeScope();
        var model = ClipTextModel.FromComponent(ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Component("text_encoder"));
        using var noGrad = no_grad();
        // Two rows with the same real tokens but different padding ids: with the mask, every row is equal.
        var ids = tensor(new long[,] { { 49406, 320, 49407, 49407, 49407 }, { 49406, 320, 49407, 0, 1 } });
        var mask = tensor(new long[,] { { 1, 1, 1, 0, 0 }, { 1, 1, 1, 0, 0 } });
        var masked = model.forward(ids, mask);
        Parity.AssertClose(masked[0, ..3], masked[1, ..3], 1e-6, "real positions");
        var unmasked = model.forward(ids, null);
        Assert.False(unmasked[0].allclose(unmasked[1]), "without the mask the padding ids should change later positions");
    }

    [Fact]
    public void AcceptsKeysWithOrWithoutTheTextModelPrefix()
    {
        Assert.Equal("text_model.encoder.layers.0.mlp.fc1.weight", ClipTextModel.MapCheckpointKey("encoder.layers.0.mlp.fc1.weight"));
        Assert.Equal("text_model.final_layer_norm.bias", ClipTextModel.MapCheckpointKey("text_model.final_layer_norm.bias"));
        Assert.Null(ClipTextModel.MapCheckpointKey("text_model.embeddings.position_ids"));
    }

    [Fact]
    public void RejectsAnUnsupportedActivationNamingTheField()
    {
        var error = Assert.Throws<ModelConfigException>(() => new ClipTextConfig { HiddenAct = "relu" }.Validate("config.json"));
        Assert.Contains("hidden_act", error.Message);
    }
}
