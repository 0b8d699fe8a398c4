using System.Collections;
using System.IO.Compression;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.PyBridge;
using Wuerstchen.Models.IO;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Conversion;

/// <summary>
/// Converts a pickled PyTorch checkpoint (the <c>torch.save</c> zip format, such as <c>model_v2_stage_b.pt</c>) into a
/// safetensors file, taking one state dict out of it by key (such as <c>effnet_state_dict</c>). The pickle is first
/// checked against an allow-list of globals and then read by TorchSharp.PyBridge's unpickler, which only builds tensors,
/// dicts and plain values: no Python code is ever run.
/// </summary>
public sealed partial class PickleCheckpointConverter
{
    public const string FormatMetadataKey = "format";
    public const string SourceFileMetadataKey = "source_file";
    public const string SourceKeyMetadataKey = "source_key";

    private readonly ILogger _logger;

    public PickleCheckpointConverter(ILogger<PickleCheckpointConverter>? logger = null)
    {
        _logger = logger ?? NullLogger<PickleCheckpointConverter>.Instance;
    }

    /// <summary>
    /// Writes the selected state dict of <paramref name="checkpointPath"/> to <paramref name="outputPath"/> atomically, with
    /// the metadata <c>format: pt</c>, <c>source_file</c> and <c>source_key</c>. PyBridge reads every tensor of the
    /// checkpoint, so peak memory is about the checkpoint's size plus the selected tensors.
    /// </summary>
    public async Task<ConversionResult> ConvertAsync(string checkpointPath, string outputPath, PickleConversionOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new PickleConversionOptions();
        string source = Path.GetFullPath(checkpointPath);
        string destination = Path.GetFullPath(outputPath);
        if (!File.Exists(source))
            throw new FileNotFoundException($"Checkpoint '{source}' does not exist.", source);

        byte[] pickle = await ReadPickleAsync(source, options.MaxPickleBytes, cancellationToken).ConfigureAwait(false);
        PickleGlobalScanner.EnsureSafe(pickle, source);

        var result = await Task.Run(() => Convert(source, destination, options, cancellationToken), cancellationToken).ConfigureAwait(false);
        LogConverted(result.TensorCount, source, options.StateDictKey, destination);
        return result;
    }

    /// <summary>
    /// The bytes of the archive's one <c>data.pkl</c>, the entry PyBridge will unpickle, read through a bound of
    /// <paramref name="maxBytes"/>: a small file that inflates to gigabytes is refused after the limit, not read whole.
    /// </summary>
    private static async Task<byte[]> ReadPickleAsync(string source, long maxBytes, CancellationToken cancellationToken)
    {
        try
        {
            await using var file = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, useAsync: true);
            await using var archive = await ZipArchive.CreateAsync(file, ZipArchiveMode.Read, leaveOpen: false, entryNameEncoding: null, cancellationToken).ConfigureAwait(false);
            // PyBridge unpickles the first entry whose name ends in data.pkl; with exactly one there is no other it could pick.
            var entries = archive.Entries.Where(e => e.Name.EndsWith("data.pkl", StringComparison.Ordinal)).ToArray();
            if (entries.Length != 1)
                throw new CheckpointConversionException(source, null, $"a torch.save archive has one data.pkl; this one has {entries.Length}.");
            if (entries[0].Length > maxBytes)
                throw TooLarge(source, maxBytes);
            await using var entry = await entries[0].OpenAsync(cancellationToken).ConfigureAwait(false);
            await using var bounded = new LimitedReadStream(entry, maxBytes, "data.pkl", leaveOpen: true);
            using var buffer = new MemoryStream();
            await bounded.CopyToAsync(buffer, cancellationToken).ConfigureAwait(false);
            return buffer.ToArray();
        }
        catch (InputTooLargeException)
        {
            throw TooLarge(source, maxBytes);
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointConversionException(source, null,
                $"the file is not a torch.save zip archive ({e.Message}); checkpoints in the legacy (pre-1.6) format must be re-saved first.", e);
        }
        catch (IOException e)
        {
            throw new CheckpointConversionException(source, null, $"the archive could not be read ({e.Message}).", e);
        }
    }

    private static CheckpointConversionException TooLarge(string source, long maxBytes) =>
        new(source, null, $"its data.pkl inflates to more than {maxBytes} bytes; a state dict's pickle holds only names and shapes (the tensors are separate entries), so this is not a checkpoint this converter reads.");

    private static ConversionResult Convert(string source, string destination, PickleConversionOptions options, CancellationToken cancellationToken)
    {
        string? key = options.StateDictKey;
        // Every tensor PyBridge creates lands in this scope and is freed with it, the unselected ones included.
        using var scope = torch.NewDisposeScope();
        Hashtable checkpoint;
        try
        {
            using var stream = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read);
            checkpoint = PyTorchUnpickler.UnpickleStateDict(stream);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // LibTorch errors carry a native stack trace after the first line.
            string reason = e.Message.Split('\n', 2)[0].Trim();
            throw new CheckpointConversionException(source, key, $"the checkpoint could not be unpickled: {reason}", e);
        }
        cancellationToken.ThrowIfCancellationRequested();

        var stateDict = Select(checkpoint, source, key);
        var tensors = Prepare(stateDict, source, key, options);
        cancellationToken.ThrowIfCancellationRequested();

        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            [FormatMetadataKey] = "pt",
            [SourceFileMetadataKey] = Path.GetFileName(source),
        };
        if (key is not null)
            metadata[SourceKeyMetadataKey] = key;
        SafetensorsWriter.Save(destination, tensors, metadata);
        return new ConversionResult(destination, key, tensors.Count, tensors.Values.Sum(t => t.numel()));
    }

    private static Hashtable Select(Hashtable checkpoint, string source, string? key)
    {
        if (key is null)
            return checkpoint;
        if (!checkpoint.ContainsKey(key))
        {
            var available = checkpoint.Keys.Cast<object>().Select(k => $"'{k}'").Order(StringComparer.Ordinal);
            throw new CheckpointConversionException(source, key, $"no such top-level entry; the checkpoint has: {string.Join(", ", available)}.");
        }
        return checkpoint[key] as Hashtable
               ?? throw new CheckpointConversionException(source, key, $"the entry is a {Describe(checkpoint[key])}, not a state dict.");
    }

    private static Dictionary<string, torch.Tensor> Prepare(Hashtable stateDict, string source, string? key, PickleConversionOptions options)
    {
        torch.ScalarType? target = options.DType switch
        {
            ConversionDType.Float32 => torch.ScalarType.Float32,
            ConversionDType.Float16 => torch.ScalarType.Float16,
            _ => null,
        };
        var notTensors = stateDict.Cast<DictionaryEntry>()
            .Where(e => e.Key is not string || e.Value is not torch.Tensor)
            .Select(e => $"'{e.Key}' ({Describe(e.Value)})")
            .Order(StringComparer.Ordinal)
            .ToArray();
        if (notTensors.Length > 0)
            throw new CheckpointConversionException(source, key, $"a state dict maps names to tensors, but these entries are not tensors: {string.Join(", ", notTensors)}.");

        var tensors = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        var renamedFrom = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in stateDict)
        {
            var (name, tensor) = ((string)entry.Key, (torch.Tensor)entry.Value!);
            if (!IsStorable(tensor.dtype))
                throw new CheckpointConversionException(source, key, $"tensor '{name}' is {tensor.dtype}, which safetensors cannot store.");

            string renamed = Rename(name, options.Renames);
            if (renamedFrom.TryGetValue(renamed, out string? other))
                throw new CheckpointConversionException(source, key, $"the renames map both '{other}' and '{name}' to '{renamed}'.");
            renamedFrom[renamed] = name;
            tensors[renamed] = target is { } dtype && tensor.is_floating_point() ? tensor.to(dtype) : tensor;
        }
        if (tensors.Count == 0)
            throw new CheckpointConversionException(source, key, "the state dict holds no tensors.");
        return tensors;
    }

    private static bool IsStorable(torch.ScalarType dtype) =>
        SafetensorsDType.Names.Any(n => SafetensorsDType.TryParse(n, out var type, out _) && type == dtype);

    private static string Rename(string name, IReadOnlyList<KeyRename> renames)
    {
        foreach (var rename in renames)
        {
            if (name.StartsWith(rename.From, StringComparison.Ordinal))
                return rename.To + name[rename.From.Length..];
        }
        return name;
    }

    private static string Describe(object? value) => value switch
    {
        null => "None",
        Hashtable => "dict",
        torch.Tensor => "tensor",
        string => "string",
        _ => value.GetType().Name,
    };

    [LoggerMessage(Level = LogLevel.Information, Message = "Converted {TensorCount} tensors from {Checkpoint} (key {StateDictKey}) to {Output}")]
    private partial void LogConverted(int tensorCount, string checkpoint, string? stateDictKey, string output);
}
