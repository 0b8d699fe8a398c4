using Wuerstchen.Pipeline.Models;

namespace Wuerstchen.Pipeline.Tests.Models;

public sealed class DeviceProfileTests
{
    private const double GiB = 1L << 30;

    [Theory]
    [InlineData(15.6, 4, 2)]   // T4 16 GB: small batches, Stage A two images at a time
    [InlineData(22.0, 4, null)] // A10G 24 GB
    [InlineData(39.4, 8, null)] // A100 40 GB
    [InlineData(79.2, 16, null)] // A100 80 GB, H100
    [InlineData(139.8, 16, null)] // H200
    public void BulkBatchesAndStageAChunksFollowTheCardsMemory(double gib, int batch, int? decode)
    {
        var profile = DeviceProfile.ForCardMemory(gib * GiB, "test card");
        Assert.Equal((batch, decode), (profile.BulkBatchSize, profile.DecodeBatch));
        Assert.Contains("test card", profile.Description);
    }

    [Fact]
    public void ACpuKeepsBatchesOfFourAndOneDecodePerBatch()
    {
        var profile = DeviceProfile.For(new ModelOptions { Device = "cpu" });
        Assert.Equal((4, (int?)null), (profile.BulkBatchSize, profile.DecodeBatch));
    }
}
