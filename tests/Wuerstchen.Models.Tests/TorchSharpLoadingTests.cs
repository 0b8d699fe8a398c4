using TorchSharp;

namespace Wuerstchen.Models.Tests;

public sealed class TorchSharpLoadingTests
{
    [Fact]
    public void NativeLibraryLoadsAndRunsATensorOp()
    {
        using var a = torch.arange(6, dtype: torch.float32).reshape(2, 3);
        using var b = torch.ones(3, 2);
        using var product = a.matmul(b);
        Assert.Equal(new float[] { 3, 3, 12, 12 }, product.data<float>().ToArray());
    }

    [Fact]
    public void NoFallbackCopyOfTheNativesWasMade()
    {
        using var _ = torch.zeros(1);
        string fallback = Path.Combine(AppContext.BaseDirectory, "cpu");
        Assert.False(Directory.Exists(fallback),
            $"TorchSharp fell back to copying natives into {fallback}: the first load of libLibTorchSharp.so failed.");
    }
}
