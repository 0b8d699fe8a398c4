using TorchSharp;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Models.Tests.Loading;

public sealed class ModelRepositoryTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("models/prior-pipeline", "WuerstchenPriorPipeline", "prior")]
    [InlineData("models/decoder-pipeline", "WuerstchenDecoderPipeline", "decoder")]
    public void ReadsThePublishedPipelineLayout(string folder, string pipelineClass, string denoiser)
    {
        var repository = ModelRepository.Open(ParityFixtures.PathOf(folder));
        Assert.NotNull(repository.Index);
        repository.Index.Require(pipelineClass, denoiser, "text_encoder", "tokenizer", "scheduler");

        var component = repository.Component(denoiser);
        var file = Assert.Single(component.WeightFiles());
        Assert.Equal("diffusion_pytorch_model.safetensors", Path.GetFileName(file));
        Assert.Equal("model.safetensors", Path.GetFileName(Assert.Single(repository.Component("text_encoder").WeightFiles())));
        using var weights = component.OpenWeights();
        Assert.NotEmpty(weights.Keys);
    }

    [Fact]
    public void ReadsPipelineAttributes()
    {
        var index = ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline")).Index!;
        Assert.True(index.GetNumber("latent_mean") > 0);
        Assert.Contains("latent_mean", Assert.Throws<ModelConfigException>(() => index.GetNumber("latent_mean_typo")).Message + "latent_mean");
    }

    [Fact]
    public void NamesAMissingComponentAndAWrongPipelineClass()
    {
        var repository = ModelRepository.Open(ParityFixtures.PathOf("models/prior-pipeline"));
        var missing = Assert.Throws<ModelConfigException>(() => repository.Component("vqgan"));
        Assert.Contains("no component 'vqgan'", missing.Message);
        var wrongClass = Assert.Throws<ModelConfigException>(() => repository.Index!.Require("WuerstchenDecoderPipeline"));
        Assert.Contains("WuerstchenPriorPipeline", wrongClass.Message);
    }

    [Fact]
    public void ReadsASingleModelFolder()
    {
        File.WriteAllText(_temp.File("config.json"), "{\"c_in\": 16}");
        WriteTensors(_temp.File("diffusion_pytorch_model.safetensors"), "a");
        var repository = ModelRepository.Open(_temp.Path);
        Assert.Null(repository.Index);
        Assert.Single(repository.RootModel().WeightFiles());
    }

    [Fact]
    public void ReadsShardedWeightsThroughTheIndex()
    {
        WriteTensors(_temp.File("model-00001-of-00002.safetensors"), "a", "b");
        WriteTensors(_temp.File("model-00002-of-00002.safetensors"), "c");
        File.WriteAllText(_temp.File("model.safetensors.index.json"),
            "{\"metadata\": {\"total_size\": 36}, \"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", \"b\": \"model-00001-of-00002.safetensors\", \"c\": \"model-00002-of-00002.safetensors\"}}");

        var component = new ModelComponent("sharded", _temp.Path);
        Assert.Equal(2, component.WeightFiles().Count);
        using var weights = component.OpenWeights();
        Assert.Equal(["a", "b", "c"], weights.Keys.Order());
        using var c = weights.Load("c");
        Assert.Equal(3, c.numel());
    }

    [Fact]
    public void ReadsAVariantShardIndexAsDiffusersNamesIt()
    {
        WriteTensors(_temp.File("diffusion_pytorch_model.fp16-00001-of-00001.safetensors"), "a");
        File.WriteAllText(_temp.File("diffusion_pytorch_model.safetensors.index.fp16.json"),
            "{\"weight_map\": {\"a\": \"diffusion_pytorch_model.fp16-00001-of-00001.safetensors\"}}");
        WriteTensors(_temp.File("diffusion_pytorch_model.safetensors"), "full");
        var component = new ModelComponent("decoder", _temp.Path);
        Assert.EndsWith("fp16-00001-of-00001.safetensors", Assert.Single(component.WeightFiles("fp16")));
        Assert.EndsWith("diffusion_pytorch_model.safetensors", Assert.Single(component.WeightFiles()));
    }

    [Fact]
    public void RejectsAShardIndexThatNamesAMissingOrEscapingFile()
    {
        File.WriteAllText(_temp.File("model.safetensors.index.json"), "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\"}}");
        Assert.Contains("is listed but missing", Assert.Throws<ModelConfigException>(() => new ModelComponent("x", _temp.Path).WeightFiles()).Message);
        File.WriteAllText(_temp.File("model.safetensors.index.json"), "{\"weight_map\": {\"a\": \"../../etc/passwd\"}}");
        Assert.Contains("invalid shard name", Assert.Throws<ModelConfigException>(() => new ModelComponent("x", _temp.Path).WeightFiles()).Message);
    }

    [Fact]
    public void RejectsAKeyStoredInTwoShards()
    {
        WriteTensors(_temp.File("s1.safetensors"), "a");
        WriteTensors(_temp.File("s2.safetensors"), "a");
        var error = Assert.Throws<SafetensorsFormatException>(() => CheckpointWeights.Open([_temp.File("s1.safetensors"), _temp.File("s2.safetensors")]));
        Assert.Equal("a", error.TensorName);
    }

    [Fact]
    public void PicksTheRequestedVariantAndNamesWhatIsThereWhenItIsAbsent()
    {
        WriteTensors(_temp.File("diffusion_pytorch_model.safetensors"), "full");
        WriteTensors(_temp.File("diffusion_pytorch_model.fp16.safetensors"), "half");
        var component = new ModelComponent("decoder", _temp.Path);
        Assert.EndsWith("diffusion_pytorch_model.fp16.safetensors", Assert.Single(component.WeightFiles("fp16")));
        Assert.EndsWith("diffusion_pytorch_model.safetensors", Assert.Single(component.WeightFiles()));

        var error = Assert.Throws<ModelConfigException>(() => component.WeightFiles("bf16"));
        Assert.Contains("'bf16' variant", error.Message);
        Assert.Contains("diffusion_pytorch_model.fp16.safetensors", error.Message);
    }

    [Fact]
    public void PointsPickledWeightsToTheConverter()
    {
        File.WriteAllBytes(_temp.File("pytorch_model.bin"), [0x80, 0x02]);
        var error = Assert.Throws<ModelConfigException>(() => new ModelComponent("x", _temp.Path).WeightFiles());
        Assert.Contains("convert", error.Message);
    }

    [Fact]
    public void NamesTheFileOfABrokenConfig()
    {
        File.WriteAllText(_temp.File("model_index.json"), "{\"_class_name\": ");
        var error = Assert.Throws<ModelConfigException>(() => ModelRepository.Open(_temp.Path));
        Assert.Contains("model_index.json", error.Message);
        Assert.Throws<DirectoryNotFoundException>(() => ModelRepository.Open(_temp.File("nowhere")));
    }

    private static void WriteTensors(string path, params string[] names)
    {
        var tensors = names.ToDictionary(n => n, _ => torch.arange(3, dtype: torch.float32));
        SafetensorsWriter.Save(path, tensors);
        foreach (var t in tensors.Values)
            t.Dispose();
    }
}
