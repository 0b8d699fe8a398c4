using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Models;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Pipeline.Training;

namespace Wuerstchen.Pipeline.Tests.Models;

/// <summary>The fine-tuned model cache stays under its bound: least recently used versions go first, recent ones never.</summary>
public sealed class FineTunedModelCacheTests : IDisposable
{
    private const double GiB = 1024d * 1024 * 1024;
    private const int WeightsBytes = 64 * 1024;

    private readonly TempDirectory _temp = new();
    private readonly FileSystemBlobStore _store;
    private readonly string _basePrior;

    public FineTunedModelCacheTests()
    {
        _store = new FileSystemBlobStore(_temp.File("store"));
        _basePrior = BasePrior(_temp.File("base-prior"));
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void MaterialisingEvictsTheLeastRecentlyUsedVersionToStayUnderTheBound()
    {
        // Room for two versions, not three.
        var models = Models(cacheMaxBytes: 2.5 * WeightsBytes);
        Publish("run-a");
        Publish("run-b");
        Publish("run-c");
        string a = models.Materialise("finetuned/run-a", _ => _basePrior);
        string b = models.Materialise("finetuned/run-b", _ => _basePrior);
        Backdate(a, minutes: 30);
        Backdate(b, minutes: 20);

        string c = models.Materialise("finetuned/run-c", _ => _basePrior);

        Assert.False(Directory.Exists(a), "the least recently used version is evicted");
        Assert.True(File.Exists(Path.Combine(b, "model_index.json")));
        Assert.True(File.Exists(Path.Combine(c, "prior", FineTunedModels.WeightsFile)));
        var cached = models.CachedVersions();
        Assert.Equal([b, c], cached.Select(v => v.Folder));
        Assert.True(cached.Sum(v => v.Bytes) <= 2.5 * WeightsBytes, $"the cache holds {cached.Sum(v => v.Bytes)} bytes");
        Assert.Null(models.TryLocal("finetuned/run-a"));
        // The evicted version's linked base components are untouched.
        Assert.True(File.Exists(Path.Combine(_basePrior, "text_encoder", "config.json")));
        string finetuned = Path.GetDirectoryName(Path.GetDirectoryName(Path.GetDirectoryName(a)!)!)!; // {store}/finetuned, above {id}/{revision}/ema
        Assert.Empty(Directory.EnumerateDirectories(finetuned, ".*"));
        Assert.False(Directory.Exists(Path.Combine(finetuned, "run-a")), "the evicted version's emptied folders are removed");
    }

    [Fact]
    public void AVersionUsedRecentlyIsNeverEvictedAndTheNewOneIsRefusedByName()
    {
        var models = Models(cacheMaxBytes: 1.5 * WeightsBytes);
        Publish("run-a");
        Publish("run-b");
        string a = models.Materialise("finetuned/run-a", _ => _basePrior);

        var error = Assert.Throws<ModelCacheFullException>(() => models.Materialise("finetuned/run-b", _ => _basePrior));

        Assert.Contains("finetuned/run-b", error.Message);
        Assert.Contains("CacheMaxGiB", error.Message);
        Assert.True(File.Exists(Path.Combine(a, "prior", FineTunedModels.WeightsFile)));
        Assert.Null(models.TryLocal("finetuned/run-b"));
        Assert.Single(models.CachedVersions());
    }

    [Fact]
    public void UsingAVersionMakesItTheMostRecentlyUsed()
    {
        var models = Models(cacheMaxBytes: 2.5 * WeightsBytes);
        Publish("run-a");
        Publish("run-b");
        Publish("run-c");
        string a = models.Materialise("finetuned/run-a", _ => _basePrior);
        string b = models.Materialise("finetuned/run-b", _ => _basePrior);
        Backdate(a, minutes: 30);
        Backdate(b, minutes: 20);
        Assert.Equal(a, models.TryLocal("finetuned/run-a")); // a request for run-a: now the newest
        Backdate(a, minutes: 10);

        models.Materialise("finetuned/run-c", _ => _basePrior);

        Assert.True(Directory.Exists(a));
        Assert.False(Directory.Exists(b));
    }

    [Fact]
    public void AVersionLargerThanTheWholeCacheIsRefusedBeforeAnythingIsEvictedOrDownloaded()
    {
        var models = Models(cacheMaxBytes: 2.5 * WeightsBytes);
        Publish("run-a");
        Publish("run-big", weightsBytes: 3 * WeightsBytes);
        string a = models.Materialise("finetuned/run-a", _ => _basePrior);
        Backdate(a, minutes: 30);

        var error = Assert.Throws<ModelCacheFullException>(() => models.Materialise("finetuned/run-big", _ => _basePrior));

        Assert.Contains("more than Wuerstchen:Models:CacheMaxGiB", error.Message);
        Assert.True(Directory.Exists(a));
        Assert.Single(models.CachedVersions());
    }

    [Fact]
    public void TheBoundMustBePositive()
    {
        Assert.Contains(new ModelOptions { Root = "/models", CacheMaxGiB = 0 }.Validate(), e => e.Contains("CacheMaxGiB"));
        Assert.Empty(new ModelOptions { Root = "/models" }.Validate());
    }

    private FineTunedModels Models(double cacheMaxBytes) =>
        new(_store, Options.Create(new ModelOptions { Root = _temp.Path, CacheRoot = _temp.File("cache"), CacheMaxGiB = cacheMaxBytes / GiB }));

    private static void Backdate(string folder, int minutes) =>
        Directory.SetLastWriteTimeUtc(folder, DateTime.UtcNow - TimeSpan.FromMinutes(minutes));

    /// <summary>A published version whose EMA weights are <paramref name="weightsBytes"/> of random bytes (the cache never parses them).</summary>
    private void Publish(string versionId, int weightsBytes = WeightsBytes)
    {
        byte[] config = "{\"_class_name\":\"WuerstchenPrior\"}"u8.ToArray();
        byte[] weights = RandomNumberGenerator.GetBytes(weightsBytes);
        var contents = new[] { ($"{FineTunedModels.EmaFolder}/config.json", config), ($"{FineTunedModels.EmaFolder}/{FineTunedModels.WeightsFile}", weights) };
        var files = contents.Select(c => new CheckpointFile(c.Item1, c.Item2.Length, Convert.ToHexStringLower(SHA256.HashData(c.Item2)))).ToArray();
        string revision = FineTunedModels.RevisionOf(files);
        foreach (var (name, bytes) in contents)
            _store.WriteAsync(FineTunedModels.FileBlob(versionId, revision, name), new MemoryStream(bytes)).GetAwaiter().GetResult();
        var version = new ModelVersion
        {
            VersionId = versionId,
            Revision = revision,
            BasePrior = "warp-ai/wuerstchen-prior",
            RunId = versionId,
            Dataset = new DatasetLocation { Prefix = "datasets/x/" },
            DatasetKey = "x",
            DatasetVersion = "1",
            DatasetItems = 1,
            Recipe = TrainingRecipe.BlogRecipe,
            Steps = 1,
            CreatedAt = DateTimeOffset.UtcNow,
            Files = files,
        };
        new FineTunedModels(_store, Options.Create(new ModelOptions { Root = _temp.Path })).PublishAsync(version, CancellationToken.None).GetAwaiter().GetResult();
    }

    /// <summary>A pipeline folder shaped like the published prior, with placeholder components.</summary>
    private static string BasePrior(string folder)
    {
        foreach (string component in new[] { "prior", "text_encoder", "tokenizer", "scheduler" })
        {
            Directory.CreateDirectory(Path.Combine(folder, component));
            File.WriteAllText(Path.Combine(folder, component, "config.json"), "{}");
        }
        File.WriteAllText(Path.Combine(folder, "model_index.json"), """
            { "_class_name": "WuerstchenPriorPipeline", "prior": ["diffusers", "WuerstchenPrior"], "scheduler": ["diffusers", "DDPMWuerstchenScheduler"],
              "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"] }
            """);
        return folder;
    }
}
