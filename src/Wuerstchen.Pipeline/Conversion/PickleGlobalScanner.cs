using System.Buffers.Binary;
using System.Text;

namespace Wuerstchen.Pipeline.Conversion;

/// <summary>
/// Walks a pickle's opcodes without running them and refuses every Python global outside the allow-list of what a
/// <c>torch.save</c> state dict needs. The unpickler behind TorchSharp.PyBridge (Razorvine.Pickle) never executes code,
/// but it quietly turns an unknown global that is called without arguments, or merely referenced, into a dictionary,
/// so a file naming <c>os.system</c> could pass; checking first refuses such a file outright.
/// </summary>
internal static class PickleGlobalScanner
{
    private static readonly HashSet<string> Allowed = new(StringComparer.Ordinal)
    {
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "collections.OrderedDict",
        "torch.DoubleStorage", "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage",
        "torch.LongStorage", "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage",
        "torch.BoolStorage", "torch.ComplexDoubleStorage", "torch.ComplexFloatStorage",
    };

    private enum Argument { None, Line, TwoLines, Fixed1, Fixed2, Fixed4, Fixed8, Length1, Length4, Length8 }

    /// <summary>Throws <see cref="UnsafePickleException"/> listing every refused global or opcode in <paramref name="pickle"/>.</summary>
    public static void EnsureSafe(ReadOnlySpan<byte> pickle, string filePath)
    {
        var refused = new SortedSet<string>(StringComparer.Ordinal);
        int position = 0;
        while (true)
        {
            if (position >= pickle.Length)
                throw new CheckpointConversionException(filePath, null, "the pickle ends without a STOP opcode (truncated?).");
            byte opcode = pickle[position++];
            if (opcode == (byte)'.')
                break;

            switch (opcode)
            {
                case 0x93: // STACK_GLOBAL: module and name come from the stack, so they cannot be checked here
                    refused.Add("STACK_GLOBAL (protocol 4+ global lookup)");
                    break;
                case 0x82 or 0x83 or 0x84: // EXT1/2/4: globals from the copyreg extension registry
                    refused.Add("EXT (copyreg extension registry)");
                    break;
            }

            var kind = ArgumentOf(opcode) ?? throw new CheckpointConversionException(filePath, null,
                $"the pickle has the unknown opcode 0x{opcode:x2} at byte {position - 1}; it is not a pickle this converter reads.");
            if (kind == Argument.TwoLines)
            {
                string module = ReadLine(pickle, ref position, filePath);
                string name = ReadLine(pickle, ref position, filePath);
                if (!Allowed.Contains($"{module}.{name}"))
                    refused.Add($"{module}.{name}");
                continue;
            }
            Skip(pickle, ref position, kind, filePath);
        }

        if (refused.Count > 0)
            throw new UnsafePickleException(filePath, refused.ToArray());
    }

    private static void Skip(ReadOnlySpan<byte> pickle, ref int position, Argument kind, string filePath)
    {
        if (kind == Argument.Line)
        {
            ReadLine(pickle, ref position, filePath);
            return;
        }
        long length = kind switch
        {
            Argument.Fixed1 => 1,
            Argument.Fixed2 => 2,
            Argument.Fixed4 => 4,
            Argument.Fixed8 => 8,
            Argument.Length1 => 1 + (long)Read(pickle, position, 1, filePath)[0],
            Argument.Length4 => 4 + (long)BinaryPrimitives.ReadUInt32LittleEndian(Read(pickle, position, 4, filePath)),
            Argument.Length8 => 8 + (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(Read(pickle, position, 8, filePath)), int.MaxValue),
            _ => 0,
        };
        if (length > pickle.Length - position)
            throw Truncated(filePath);
        position += (int)length;
    }

    private static ReadOnlySpan<byte> Read(ReadOnlySpan<byte> pickle, int position, int count, string filePath) =>
        count <= pickle.Length - position ? pickle.Slice(position, count) : throw Truncated(filePath);

    private static string ReadLine(ReadOnlySpan<byte> pickle, ref int position, string filePath)
    {
        int end = pickle[position..].IndexOf((byte)'\n');
        if (end < 0)
            throw Truncated(filePath);
        string line = Encoding.UTF8.GetString(pickle.Slice(position, end));
        position += end + 1;
        return line;
    }

    private static CheckpointConversionException Truncated(string filePath) =>
        new(filePath, null, "the pickle is truncated inside an opcode's argument.");

    private static Argument? ArgumentOf(byte opcode) => opcode switch
    {
        (byte)'(' or (byte)'0' or (byte)'1' or (byte)'2' or (byte)'N' or (byte)'Q' or (byte)'R' or (byte)'a' or (byte)'b'
            or (byte)'d' or (byte)'}' or (byte)'e' or (byte)'l' or (byte)']' or (byte)'o' or (byte)'s' or (byte)'t' or (byte)')'
            or (byte)'u' or 0x81 or 0x85 or 0x86 or 0x87 or 0x88 or 0x89 or 0x8f or 0x90 or 0x91 or 0x92 or 0x93 or 0x94
            or 0x97 or 0x98 => Argument.None,
        (byte)'I' or (byte)'L' or (byte)'S' or (byte)'V' or (byte)'F' or (byte)'g' or (byte)'p' or (byte)'P' => Argument.Line,
        (byte)'c' or (byte)'i' => Argument.TwoLines,
        (byte)'K' or (byte)'h' or (byte)'q' or 0x80 or 0x82 => Argument.Fixed1,
        (byte)'M' or 0x83 => Argument.Fixed2,
        (byte)'J' or (byte)'j' or (byte)'r' or 0x84 => Argument.Fixed4,
        (byte)'G' or 0x95 => Argument.Fixed8,
        (byte)'U' or (byte)'C' or 0x8c or 0x8a => Argument.Length1,
        (byte)'T' or (byte)'B' or (byte)'X' or 0x8b => Argument.Length4,
        0x8d or 0x8e or 0x96 => Argument.Length8,
        _ => null,
    };
}
