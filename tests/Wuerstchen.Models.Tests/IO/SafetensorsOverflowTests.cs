using System.Text;
using Wuerstchen.Models.IO;

namespace Wuerstchen.Models.Tests.IO;

/// <summary>Headers whose numbers do not fit: a format error naming the tensor, never an OverflowException.</summary>
public sealed class SafetensorsOverflowTests
{
    /// <summary>A safetensors image with <paramref name="headerJson"/> as its header and <paramref name="dataBytes"/> zero bytes of data.</summary>
    public static byte[] FileWithHeader(string headerJson, int dataBytes)
    {
        byte[] json = Encoding.UTF8.GetBytes(headerJson);
        var file = new byte[8 + json.Length + dataBytes];
        BitConverter.TryWriteBytes(file.AsSpan(0, 8), (ulong)json.Length);
        json.CopyTo(file, 8);
        return file;
    }

    [Theory]
    [InlineData("[4294967296, 4294967296]", "F32")]
    [InlineData("[9223372036854775807, 2]", "U8")]
    [InlineData("[3037000500, 3037000500]", "U8")]
    [InlineData("[2305843009213693952]", "F32")]
    public void AShapeWhoseSizeOverflowsIsAFormatError(string shape, string dtype)
    {
        byte[] file = FileWithHeader($"{{\"w\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[0,12]}}}}", 12);

        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsHeader.Read(new MemoryStream(file), file.Length, "huge.safetensors"));

        Assert.Equal("w", e.TensorName);
        Assert.Contains("more bytes than a file can", e.Message);
    }

    [Fact]
    public void AZeroDimensionMakesAnEmptyTensorWhateverTheOtherDimensions()
    {
        byte[] file = FileWithHeader("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,0,4294967296],\"data_offsets\":[0,0]}}", 0);

        var header = SafetensorsHeader.Read(new MemoryStream(file), file.Length, "empty.safetensors");

        Assert.Equal(0, header.Tensors["w"].ElementCount);
    }
}
