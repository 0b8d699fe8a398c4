using System.IO.Compression;
using Wuerstchen.Models.Tests;
using Wuerstchen.Pipeline.Conversion;

namespace Wuerstchen.Pipeline.Tests.Hardening;

public sealed class PickleBoundTests
{
    /// <summary>A torch.save-shaped zip whose data.pkl is <paramref name="pickleBytes"/> bytes of NONE/POP pairs, deflated to almost nothing.</summary>
    internal static void WriteInflatingCheckpoint(string path, int pickleBytes)
    {
        var pickle = new byte[pickleBytes];
        pickle[0] = 0x80;
        pickle[1] = 2;
        for (int i = 2; i < pickle.Length - 2; i += 2)
        {
            pickle[i] = (byte)'N';
            pickle[i + 1] = (byte)'0';
        }
        pickle[^2] = (byte)'}';
        pickle[^1] = (byte)'.';
        using var archive = ZipFile.Open(path, ZipArchiveMode.Create);
        using var entry = archive.CreateEntry("archive/data.pkl", CompressionLevel.Optimal).Open();
        entry.Write(pickle);
    }

    [Fact]
    public async Task ADataPklThatInflatesPastTheLimitIsRefusedWithTheConvertersOwnError()
    {
        using var temp = new TempDirectory();
        string checkpoint = temp.File("bomb.pt");
        WriteInflatingCheckpoint(checkpoint, 96 << 20);
        Assert.True(new FileInfo(checkpoint).Length < 1 << 20, "the archive should be a small file that inflates a lot");

        var e = await Assert.ThrowsAsync<CheckpointConversionException>(() =>
            new PickleCheckpointConverter().ConvertAsync(checkpoint, temp.File("out.safetensors"), cancellationToken: TestContext.Current.CancellationToken));

        Assert.Contains($"inflates to more than {64 << 20} bytes", e.Message);
        Assert.False(File.Exists(temp.File("out.safetensors")));
    }

    [Fact]
    public async Task TheLimitIsAnOption()
    {
        using var temp = new TempDirectory();
        string checkpoint = temp.File("small.pt");
        WriteInflatingCheckpoint(checkpoint, 3 << 20);

        var e = await Assert.ThrowsAsync<CheckpointConversionException>(() =>
            new PickleCheckpointConverter().ConvertAsync(checkpoint, temp.File("out.safetensors"), new PickleConversionOptions { MaxPickleBytes = 1 << 20 }, TestContext.Current.CancellationToken));

        Assert.Contains($"inflates to more than {1 << 20} bytes", e.Message);
    }
}
