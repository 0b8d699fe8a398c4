using Wuerstchen.Pipeline.Hub;

namespace Wuerstchen.Pipeline.Tests.Hub;

public sealed class PipelineFileSelectorTests
{
    [Fact]
    public void TakesConfigsTokenizerFilesAndSafetensorsOnly()
    {
        var selection = PipelineFileSelector.Select(
            ["config.json", "model.safetensors", "pytorch_model.bin", "model.onnx", "flax_model.msgpack", "tf_model.h5", "model.ckpt", "vocab.json", "merges.txt", "README.md"], null);

        Assert.Equal(["config.json", "vocab.json", "merges.txt", "model.safetensors"], selection.Files);
        Assert.Null(selection.WeightIndex);
        Assert.False(selection.VariantMissing);
    }

    [Theory]
    [InlineData("diffusion_pytorch_model.safetensors.index.fp16.json")]
    [InlineData("diffusion_pytorch_model.fp16.safetensors.index.json")]
    public void FindsAVariantIndexUnderEachNamingConvention(string index)
    {
        var selection = PipelineFileSelector.Select(["config.json", "diffusion_pytorch_model.safetensors.index.json", index], "fp16");

        Assert.Equal(index, selection.WeightIndex);
        Assert.Equal(["config.json", index], selection.Files);
    }

    [Fact]
    public void PrefersAnIndexOverASingleFileAndTheDiffusersNameOverTheTransformersOne()
    {
        Assert.Equal("diffusion_pytorch_model.safetensors.index.json",
            PipelineFileSelector.Select(["diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors.index.json", "model.safetensors"], null).WeightIndex);
        Assert.Equal(["diffusion_pytorch_model.safetensors"], PipelineFileSelector.Select(["model.safetensors", "diffusion_pytorch_model.safetensors"], null).Files);
    }

    [Fact]
    public void FallsBackToTheFullWeightsWhenTheVariantIsMissing()
    {
        var selection = PipelineFileSelector.Select(["config.json", "model.safetensors"], "fp16");

        Assert.Equal(["config.json", "model.safetensors"], selection.Files);
        Assert.True(selection.VariantMissing);
    }

    [Fact]
    public void AShardIndexMayOnlyNameSafetensorsFilesBesideIt()
    {
        using var temp = new Wuerstchen.Models.Tests.TempDirectory();
        File.WriteAllText(temp.File("good.json"), """{"weight_map": {"a": "m-00001-of-00002.safetensors", "b": "m-00002-of-00002.safetensors", "c": "m-00001-of-00002.safetensors"}}""");
        File.WriteAllText(temp.File("bin.json"), """{"weight_map": {"a": "pytorch_model-00001-of-00002.bin"}}""");
        File.WriteAllText(temp.File("escape.json"), """{"weight_map": {"a": "../../evil.safetensors"}}""");

        Assert.Equal(["m-00001-of-00002.safetensors", "m-00002-of-00002.safetensors"], PipelineFileSelector.ShardsOf(temp.File("good.json"), "x/good.json"));
        Assert.Throws<Wuerstchen.Models.Loading.ModelConfigException>(() => PipelineFileSelector.ShardsOf(temp.File("bin.json"), "x/bin.json"));
        Assert.Throws<Wuerstchen.Models.Loading.ModelConfigException>(() => PipelineFileSelector.ShardsOf(temp.File("escape.json"), "x/escape.json"));
    }
}
