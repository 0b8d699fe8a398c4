using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using TorchSharp;

namespace Wuerstchen.Pipeline.Tests.Conversion;

/// <summary>
/// Writes checkpoints the way <c>torch.save</c> does (zip format, pickle protocol 2): <c>archive/data.pkl</c>, one
/// <c>archive/data/N</c> entry per tensor storage, <c>archive/version</c> and <c>archive/byteorder</c>. A state dict
/// (<see cref="StateDict"/>) is pickled as an <c>OrderedDict</c> with a <c>_metadata</c> attribute, as
/// <c>module.state_dict()</c> is; other dictionaries as plain dicts.
/// </summary>
public sealed class TorchSaveWriter
{
    private readonly MemoryStream _pickle = new();
    private readonly List<torch.Tensor> _storages = [];
    private int _memo;

    /// <summary>Marks a dictionary to be pickled as a module's state dict.</summary>
    public sealed record StateDict(IReadOnlyDictionary<string, torch.Tensor> Tensors);

    public static void Save(string path, IReadOnlyDictionary<string, object?> checkpoint)
    {
        var writer = new TorchSaveWriter();
        writer.Op(0x80, 2); // PROTO 2
        writer.Value(checkpoint);
        writer.Op((byte)'.');
        WriteArchive(path, writer._pickle.ToArray(), writer._storages);
    }

    /// <summary>An archive whose <c>data.pkl</c> is exactly <paramref name="pickle"/>, for hostile inputs.</summary>
    public static void SaveRawPickle(string path, byte[] pickle) => WriteArchive(path, pickle, []);

    private static void WriteArchive(string path, byte[] pickle, IReadOnlyList<torch.Tensor> storages)
    {
        using var archive = new ZipArchive(File.Create(path), ZipArchiveMode.Create);
        Entry(archive, "archive/data.pkl", pickle);
        Entry(archive, "archive/byteorder", "little"u8.ToArray());
        for (int i = 0; i < storages.Count; i++)
            Entry(archive, $"archive/data/{i}", storages[i].bytes.ToArray());
        Entry(archive, "archive/version", "3\n"u8.ToArray());
    }

    private static void Entry(ZipArchive archive, string name, byte[] bytes)
    {
        using var stream = archive.CreateEntry(name, CompressionLevel.NoCompression).Open();
        stream.Write(bytes);
    }

    private void Value(object? value)
    {
        switch (value)
        {
            case null:
                Op((byte)'N');
                break;
            case bool flag:
                Op(flag ? (byte)0x88 : (byte)0x89);
                break;
            case int or long:
                Int(System.Convert.ToInt64(value));
                break;
            case double number:
                Op((byte)'G');
                Span<byte> bits = stackalloc byte[8];
                BinaryPrimitives.WriteDoubleBigEndian(bits, number);
                _pickle.Write(bits);
                break;
            case string text:
                String(text);
                break;
            case torch.Tensor tensor:
                Tensor(tensor);
                break;
            case StateDict stateDict:
                OrderedDict(stateDict.Tensors.Select(t => (t.Key, (object?)t.Value)));
                Value(new Dictionary<string, object?> { ["_metadata"] = new Dictionary<string, object?> { [""] = new Dictionary<string, object?> { ["version"] = 1 } } });
                Op((byte)'b'); // BUILD: the OrderedDict's __dict__, holding _metadata
                break;
            case IReadOnlyDictionary<string, object?> dict:
                Op((byte)'}');
                Put();
                SetItems(dict.Select(d => (d.Key, d.Value)));
                break;
            default:
                throw new NotSupportedException(value.GetType().Name);
        }
    }

    private void OrderedDict(IEnumerable<(string Key, object? Value)> items)
    {
        Global("collections", "OrderedDict");
        Op((byte)')');
        Op((byte)'R');
        Put();
        SetItems(items);
    }

    private void SetItems(IEnumerable<(string Key, object? Value)> items)
    {
        // Python batches SETITEMS by 1000; one batch per dict is still valid pickle.
        Op((byte)'(');
        foreach (var (key, value) in items)
        {
            String(key);
            Value(value);
        }
        Op((byte)'u');
    }

    /// <summary><c>torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict())</c>.</summary>
    private void Tensor(torch.Tensor tensor)
    {
        var contiguous = tensor.contiguous();
        int key = _storages.Count;
        _storages.Add(contiguous);

        Global("torch._utils", "_rebuild_tensor_v2");
        Op((byte)'(');
        Op((byte)'(');
        String("storage");
        Global("torch", StorageName(contiguous.dtype));
        String(key.ToString(System.Globalization.CultureInfo.InvariantCulture));
        String("cpu");
        Int(contiguous.numel());
        Op((byte)'t');
        Op((byte)'Q'); // BINPERSID
        Int(0);
        Tuple(contiguous.shape);
        Tuple(contiguous.stride());
        Op(0x89);
        OrderedDict([]);
        Op((byte)'t');
        Op((byte)'R');
        Put();
    }

    private void Tuple(long[] values)
    {
        if (values.Length == 0)
        {
            Op((byte)')');
            return;
        }
        if (values.Length > 3)
            Op((byte)'(');
        foreach (long value in values)
            Int(value);
        Op(values.Length switch { 1 => (byte)0x85, 2 => (byte)0x86, 3 => (byte)0x87, _ => (byte)'t' });
    }

    private void Global(string module, string name)
    {
        Op((byte)'c');
        _pickle.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
        Put();
    }

    private void String(string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        Op((byte)'X');
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(length, bytes.Length);
        _pickle.Write(length);
        _pickle.Write(bytes);
        Put();
    }

    private void Int(long value)
    {
        if (value is >= 0 and < 256)
        {
            Op((byte)'K', (byte)value);
            return;
        }
        if (value is >= 0 and < 65536)
        {
            Op((byte)'M', (byte)value, (byte)(value >> 8));
            return;
        }
        Op((byte)'J');
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, checked((int)value));
        _pickle.Write(bytes);
    }

    /// <summary>BINPUT, as Python's pickler memoises every object; exercises the memo opcodes.</summary>
    private void Put()
    {
        if (_memo < 256)
            Op((byte)'q', (byte)_memo);
        else
        {
            Op((byte)'r');
            Span<byte> index = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(index, _memo);
            _pickle.Write(index);
        }
        _memo++;
    }

    private void Op(params byte[] bytes) => _pickle.Write(bytes);

    private static string StorageName(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float64 => "DoubleStorage",
        torch.ScalarType.Float32 => "FloatStorage",
        torch.ScalarType.Float16 => "HalfStorage",
        torch.ScalarType.BFloat16 => "BFloat16Storage",
        torch.ScalarType.Int64 => "LongStorage",
        torch.ScalarType.Int32 => "IntStorage",
        torch.ScalarType.Int16 => "ShortStorage",
        torch.ScalarType.Int8 => "CharStorage",
        torch.ScalarType.Byte => "ByteStorage",
        torch.ScalarType.Bool => "BoolStorage",
        _ => throw new NotSupportedException(dtype.ToString()),
    };
}
