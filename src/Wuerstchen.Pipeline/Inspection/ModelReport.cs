using System.Text.Json;

namespace Wuerstchen.Pipeline.Inspection;

/// <summary>What a model folder holds: a pipeline's components, or the one model of a single-model folder.</summary>
/// <param name="Root">The folder inspected (full path).</param>
/// <param name="PipelineClass">The pipeline class from <c>model_index.json</c>; null for a single-model folder.</param>
public sealed record ModelReport(string Root, string? PipelineClass, IReadOnlyList<ComponentReport> Components);

/// <summary>One component (or the single model): its class, configuration and weights.</summary>
/// <param name="ClassName">From <c>model_index.json</c>, else the config's <c>_class_name</c> or first <c>architectures</c> entry.</param>
/// <param name="ConfigFile">The configuration file read, relative to the report's root; null when the folder has none.</param>
/// <param name="Config">That file's JSON.</param>
/// <param name="ParameterCount">Elements of every stored tensor, buffers included.</param>
public sealed record ComponentReport(
    string Name,
    string? ClassName,
    string? ConfigFile,
    JsonElement? Config,
    IReadOnlyList<WeightFileReport> WeightFiles,
    int TensorCount,
    long ParameterCount,
    IReadOnlyList<DTypeCount> DTypes);

/// <param name="Path">Relative to the report's root.</param>
/// <param name="Sha256">Lower-case hex; null when hashing was switched off.</param>
public sealed record WeightFileReport(string Path, long SizeBytes, string? Sha256, int TensorCount, long ParameterCount);

/// <summary>How many tensors, and how many elements, a component stores in one safetensors dtype.</summary>
public sealed record DTypeCount(string DType, int Tensors, long Parameters);
