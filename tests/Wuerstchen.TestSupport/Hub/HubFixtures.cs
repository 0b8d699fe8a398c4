using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using TorchSharp;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Pipeline.Tests.Hub;

/// <summary>Repository trees for <see cref="FakeHubServer"/>, built from the fixture models in the published layout.</summary>
public static class HubFixtures
{
    public const string PriorRepo = "warp-ai/wuerstchen-prior";
    public const string DecoderRepo = "warp-ai/wuerstchen";

    /// <summary>Files a repository may hold that a pipeline never needs.</summary>
    public static readonly string[] UnneededFiles =
    [
        ".gitattributes", "README.md", "model.ckpt", "prior/diffusion_pytorch_model.bin", "text_encoder/pytorch_model.bin",
        "text_encoder/model.onnx", "text_encoder/flax_model.msgpack", "text_encoder/tf_model.h5", "prior/model_v3_stage_c.pt",
        "unlisted_component/config.json", "unlisted_component/diffusion_pytorch_model.safetensors", "prior/nested/config.json",
    ];

    public static string CommitOf(string name) => Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(name)));

    /// <summary>Every file of the fixture folder, by repository path, plus <see cref="UnneededFiles"/>.</summary>
    public static Dictionary<string, byte[]> Tree(string fixture)
    {
        string root = ParityFixtures.PathOf(fixture);
        var tree = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f).Replace(Path.DirectorySeparatorChar, '/'), File.ReadAllBytes, StringComparer.Ordinal);
        foreach (string path in UnneededFiles)
            tree[path] = Encoding.UTF8.GetBytes($"not needed: {path}");
        return tree;
    }

    /// <summary>Adds <c>X.fp16.safetensors</c> beside each <c>X.safetensors</c> of <paramref name="folders"/>, with float16 tensors.</summary>
    public static void AddFp16Copies(Dictionary<string, byte[]> tree, string fixture, params string[] folders)
    {
        string root = ParityFixtures.PathOf(fixture);
        foreach (string folder in folders)
        {
            string name = tree.Keys.Single(k => k.StartsWith(folder + "/", StringComparison.Ordinal) && k.EndsWith(".safetensors", StringComparison.Ordinal) && !k.Contains(".fp16.", StringComparison.Ordinal));
            using var scope = torch.NewDisposeScope();
            using var file = SafetensorsFile.Open(Path.Combine(root, name));
            var tensors = file.Tensors.Keys.ToDictionary(k => k, k => ToFloat16(file.Load(k)));
            tree[name.Replace(".safetensors", ".fp16.safetensors", StringComparison.Ordinal)] = Serialize(tensors);
        }
    }

    /// <summary>Replaces <c>{folder}/{baseName}.safetensors</c> by two shards and their <c>.safetensors.index.json</c>.</summary>
    public static void Shard(Dictionary<string, byte[]> tree, string fixture, string folder, string baseName)
    {
        string name = $"{folder}/{baseName}.safetensors";
        using var scope = torch.NewDisposeScope();
        using var file = SafetensorsFile.Open(Path.Combine(ParityFixtures.PathOf(fixture), name));
        var keys = file.Tensors.Keys.Order(StringComparer.Ordinal).ToArray();
        var halves = new[] { keys[..(keys.Length / 2)], keys[(keys.Length / 2)..] };
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < 2; i++)
        {
            string shard = $"{baseName}-{i + 1:00000}-of-00002.safetensors";
            tree[$"{folder}/{shard}"] = Serialize(halves[i].ToDictionary(k => k, k => file.Load(k)));
            foreach (string key in halves[i])
                weightMap[key] = shard;
        }
        tree.Remove(name);
        tree[$"{folder}/{baseName}.safetensors.index.json"] = JsonSerializer.SerializeToUtf8Bytes(new { metadata = new { total_size = 0 }, weight_map = weightMap });
    }

    private static torch.Tensor ToFloat16(torch.Tensor tensor) => tensor.is_floating_point() ? tensor.to(torch.ScalarType.Float16) : tensor;

    private static byte[] Serialize(IReadOnlyDictionary<string, torch.Tensor> tensors)
    {
        using var buffer = new MemoryStream();
        SafetensorsWriter.Write(buffer, tensors);
        return buffer.ToArray();
    }
}
