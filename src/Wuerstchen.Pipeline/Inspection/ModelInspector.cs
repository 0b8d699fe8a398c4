using System.Security.Cryptography;
using System.Text.Json;
using Wuerstchen.Models.IO;
using Wuerstchen.Models.Loading;

namespace Wuerstchen.Pipeline.Inspection;

/// <summary>
/// Describes a model folder (a pipeline or a single model, as <see cref="ModelRepository"/> reads it): per component its
/// class, configuration, weight files, tensor and parameter counts and dtypes. Counts come from the safetensors headers
/// alone; only the optional SHA-256 reads the tensor data.
/// </summary>
public sealed class ModelInspector
{
    private static readonly string[] ConfigFiles = [ModelComponent.ConfigFile, "scheduler_config.json", "tokenizer_config.json"];

    private readonly InspectionOptions _options;

    public ModelInspector(InspectionOptions? options = null)
    {
        _options = options ?? new InspectionOptions();
    }

    public async Task<ModelReport> InspectAsync(string folder, CancellationToken cancellationToken = default)
    {
        var repository = ModelRepository.Open(folder);
        var components = new List<ComponentReport>();
        if (repository.Index is { } index)
        {
            foreach (var entry in index.Components.Values.OrderBy(c => c.Name, StringComparer.Ordinal))
                components.Add(await InspectComponentAsync(repository.Root, repository.Component(entry.Name), entry.ClassName, cancellationToken).ConfigureAwait(false));
        }
        else
        {
            components.Add(await InspectComponentAsync(repository.Root, repository.RootModel(), null, cancellationToken).ConfigureAwait(false));
        }
        return new ModelReport(repository.Root, repository.Index?.ClassName, components);
    }

    private async Task<ComponentReport> InspectComponentAsync(string root, ModelComponent component, string? indexClassName, CancellationToken cancellationToken)
    {
        string? configPath = ConfigFiles.Select(f => Path.Combine(component.Directory, f)).FirstOrDefault(File.Exists);
        JsonElement? config = null;
        if (configPath is not null)
        {
            using var document = ConfigReader.ReadDocument(configPath);
            config = document.RootElement.Clone();
        }

        // A folder with config.json is a model and must have weights; schedulers and tokenizers have none.
        var weightFiles = File.Exists(component.ConfigPath) ? component.WeightFiles(_options.Variant) : [];
        var files = new List<WeightFileReport>();
        var dtypes = new SortedDictionary<string, (int Tensors, long Parameters)>(StringComparer.Ordinal);
        foreach (string path in weightFiles)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (file, tensors) = await InspectWeightFileAsync(root, path, cancellationToken).ConfigureAwait(false);
            files.Add(file);
            foreach (var tensor in tensors)
            {
                var (count, parameters) = dtypes.GetValueOrDefault(tensor.DType);
                dtypes[tensor.DType] = (count + 1, parameters + tensor.ElementCount);
            }
        }

        return new ComponentReport(
            component.Name,
            indexClassName ?? ClassNameFrom(config),
            configPath is null ? null : Path.GetRelativePath(root, configPath),
            config,
            files,
            files.Sum(f => f.TensorCount),
            files.Sum(f => f.ParameterCount),
            dtypes.Select(d => new DTypeCount(d.Key, d.Value.Tensors, d.Value.Parameters)).ToArray());
    }

    private async Task<(WeightFileReport File, IReadOnlyCollection<SafetensorsTensorInfo> Tensors)> InspectWeightFileAsync(string root, string path, CancellationToken cancellationToken)
    {
        await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 20, useAsync: true);
        long length = stream.Length;
        var header = SafetensorsHeader.Read(stream, length, path);
        string? sha256 = null;
        if (_options.ComputeSha256)
        {
            stream.Position = 0;
            sha256 = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
        }
        var tensors = header.Tensors.Values.ToArray();
        var report = new WeightFileReport(Path.GetRelativePath(root, path), length, sha256, tensors.Length, tensors.Sum(t => t.ElementCount));
        return (report, tensors);
    }

    private static string? ClassNameFrom(JsonElement? config)
    {
        if (config is not { ValueKind: JsonValueKind.Object } element)
            return null;
        if (element.TryGetProperty("_class_name", out var className) && className.ValueKind == JsonValueKind.String)
            return className.GetString();
        if (element.TryGetProperty("architectures", out var architectures) && architectures.ValueKind == JsonValueKind.Array
            && architectures.GetArrayLength() > 0 && architectures[0].ValueKind == JsonValueKind.String)
            return architectures[0].GetString();
        return null;
    }
}
