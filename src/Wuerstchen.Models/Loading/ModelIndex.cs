using System.Text.Json;

namespace Wuerstchen.Models.Loading;

/// <summary>A component entry of <c>model_index.json</c>: <c>"prior": ["diffusers", "WuerstchenPrior"]</c>.</summary>
public sealed record ModelIndexComponent(string Name, string? Library, string? ClassName);

/// <summary>A diffusers pipeline's <c>model_index.json</c>: the pipeline class, its components and its scalar attributes.</summary>
public sealed class ModelIndex
{
    private readonly Dictionary<string, JsonElement> _attributes;

    private ModelIndex(string path, string className, IReadOnlyDictionary<string, ModelIndexComponent> components, Dictionary<string, JsonElement> attributes)
    {
        FilePath = path;
        ClassName = className;
        Components = components;
        _attributes = attributes;
    }

    public string FilePath { get; }

    public string ClassName { get; }

    public IReadOnlyDictionary<string, ModelIndexComponent> Components { get; }

    public static ModelIndex Read(string path)
    {
        using var document = ConfigReader.ReadDocument(path);
        var root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object)
            throw new ModelConfigException(path, "the file is not a JSON object.");
        if (!root.TryGetProperty("_class_name", out var classElement) || classElement.ValueKind != JsonValueKind.String)
            throw new ModelConfigException(path, "'_class_name' is missing or not a string.");

        var components = new Dictionary<string, ModelIndexComponent>(StringComparer.Ordinal);
        var attributes = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            if (property.Name.StartsWith('_'))
                continue;
            if (property.Value.ValueKind == JsonValueKind.Array)
            {
                var parts = property.Value.EnumerateArray().ToArray();
                if (parts.Length != 2)
                    throw new ModelConfigException(path, $"component '{property.Name}' must be [library, class].");
                components[property.Name] = new ModelIndexComponent(property.Name, parts[0].GetString(), parts[1].GetString());
            }
            else
            {
                attributes[property.Name] = property.Value.Clone();
            }
        }
        return new ModelIndex(path, classElement.GetString()!, components, attributes);
    }

    /// <summary>A numeric pipeline attribute such as <c>latent_mean</c> or <c>resolution_multiple</c>.</summary>
    public double GetNumber(string name)
    {
        if (!_attributes.TryGetValue(name, out var value) || value.ValueKind != JsonValueKind.Number)
            throw new ModelConfigException(FilePath, $"the number '{name}' is missing.");
        return value.GetDouble();
    }

    /// <summary>Fails unless the index declares <paramref name="expectedClass"/> with every component in <paramref name="requiredComponents"/>.</summary>
    public void Require(string expectedClass, params string[] requiredComponents)
    {
        if (ClassName != expectedClass)
            throw new ModelConfigException(FilePath, $"this is a '{ClassName}' repository; a '{expectedClass}' repository is needed here.");
        var missing = requiredComponents.Where(c => !Components.ContainsKey(c)).ToArray();
        if (missing.Length > 0)
            throw new ModelConfigException(FilePath, $"the pipeline lacks the component(s) {string.Join(", ", missing)}.");
    }
}
