namespace Wuerstchen.Models.Pipelines;

/// <summary>
/// A stage needed more memory than its device has: a CUDA out-of-memory error, or a failed allocation on the CPU. The
/// same stage, size and batch will fail the same way again, so this is a permanent failure of the request as it
/// stands: retrying it is pointless, a smaller batch or size may fit (a batcher may split the batch and run the halves).
/// </summary>
public sealed class StageOutOfMemoryException : Exception
{
    public StageOutOfMemoryException(string stage, int width, int height, long batch, string device, Exception inner)
        : base(Describe(stage, width, height, batch, device, inner), inner)
    {
        Stage = stage;
        Width = width;
        Height = height;
        Batch = batch;
        Device = device;
    }

    /// <summary>"Stage C", "Stage B" or "Stage A".</summary>
    public string Stage { get; }

    /// <summary>The image width in pixels the stage was working towards.</summary>
    public int Width { get; }

    public int Height { get; }

    /// <summary>Images in the stage's batch (guidance doubles the rows a model call sees; this counts images).</summary>
    public long Batch { get; }

    /// <summary>The device that ran out, e.g. <c>cuda:0</c> or <c>cpu</c>.</summary>
    public string Device { get; }

    /// <summary>Whether <paramref name="error"/> (or an inner error) is LibTorch or .NET failing to allocate memory.</summary>
    public static bool IsOutOfMemory(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            if (e is OutOfMemoryException or StageOutOfMemoryException)
                return true;
            string message = e.Message;
            if (message.Contains("out of memory", StringComparison.OrdinalIgnoreCase) // CUDA: "CUDA out of memory." / "CUDA error: out of memory"
                || message.Contains("not enough memory", StringComparison.OrdinalIgnoreCase) // DefaultCPUAllocator: not enough memory: you tried to allocate …
                || message.Contains("can't allocate memory", StringComparison.OrdinalIgnoreCase))
                return true;
        }
        return false;
    }

    /// <summary>Runs <paramref name="work"/>, turning an allocation failure into a <see cref="StageOutOfMemoryException"/> that names what was asked.</summary>
    public static T Guard<T>(string stage, int width, int height, long batch, TorchSharp.torch.Device device, Func<T> work)
    {
        try
        {
            return work();
        }
        catch (Exception e) when (e is not StageOutOfMemoryException && IsOutOfMemory(e))
        {
            throw new StageOutOfMemoryException(stage, width, height, batch, device.ToString(), e);
        }
    }

    private static string Describe(string stage, int width, int height, long batch, string device, Exception inner)
    {
        // LibTorch's message carries a C++ stack trace after its first line; the first line says what was asked.
        string cause = inner.Message.Split('\n', 2)[0].Trim();
        return $"{stage} ran out of memory on {device} at {width}×{height} px with a batch of {batch} image{(batch == 1 ? "" : "s")}: {cause} " +
               "A smaller batch or image size may fit; the same request will fail the same way again.";
    }
}
