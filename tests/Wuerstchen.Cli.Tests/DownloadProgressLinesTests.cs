using Wuerstchen.Pipeline.Hub;

namespace Wuerstchen.Cli.Tests;

/// <summary>The plain download lines written when standard error is not a terminal, on a clock the test moves.</summary>
public sealed class DownloadProgressLinesTests
{
    private sealed class ManualClock : TimeProvider
    {
        public long Ticks { get; private set; }

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Ticks;

        public void Advance(TimeSpan time) => Ticks += time.Ticks;
    }

    private const long MiB = 1024 * 1024;

    [Fact]
    public void AFileGetsAStartLineAtMostOneLinePerIntervalWithSpeedAndTimeLeftAndADoneLine()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var lines = new DownloadProgressLines(output, clock, TimeSpan.FromSeconds(5));
        const string path = "prior/diffusion_pytorch_model.safetensors";

        lines.Report(new DownloadProgress("warp-ai/wuerstchen-prior", path, 0, 100 * MiB, Starting: true));
        for (int second = 1; second <= 9; second++)
        {
            clock.Advance(TimeSpan.FromSeconds(1));
            lines.Report(new DownloadProgress("warp-ai/wuerstchen-prior", path, second * 10 * MiB, 100 * MiB));
        }
        clock.Advance(TimeSpan.FromSeconds(1));
        lines.Report(new DownloadProgress("warp-ai/wuerstchen-prior", path, 100 * MiB, 100 * MiB));
        lines.Report(new DownloadProgress("warp-ai/wuerstchen-prior", path, 100 * MiB, 100 * MiB));
        lines.Finish();

        Assert.Equal(
        [
            $"  {path}: downloading 100.0 MiB",
            $"  {path}: 50.0 MiB of 100.0 MiB (50%), 10.0 MiB/s, about 5.0 s left",
            $"  {path}: 100.0 MiB done in 10 s, 10.0 MiB/s",
            "Downloaded 100.0 MiB in 1 file in 10 s, 10.0 MiB/s",
        ], output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
        Assert.DoesNotContain('\r', output.ToString().Replace(Environment.NewLine, "\n", StringComparison.Ordinal));
    }

    [Fact]
    public void AResumedFileSaysWhereItResumesEachTimeAndItsSpeedCountsOnlyTheNewBytes()
    {
        var clock = new ManualClock();
        var output = new StringWriter();
        var lines = new DownloadProgressLines(output, clock, TimeSpan.FromSeconds(5));

        lines.Report(new DownloadProgress("r/m", "a.safetensors", 60 * MiB, 100 * MiB, Starting: true));
        clock.Advance(TimeSpan.FromSeconds(5));
        lines.Report(new DownloadProgress("r/m", "a.safetensors", 80 * MiB, 100 * MiB));
        clock.Advance(TimeSpan.FromSeconds(1));
        lines.Report(new DownloadProgress("r/m", "a.safetensors", 80 * MiB, 100 * MiB, Starting: true)); // interrupted, resumed at once
        clock.Advance(TimeSpan.FromSeconds(4));
        lines.Report(new DownloadProgress("r/m", "a.safetensors", 100 * MiB, 100 * MiB));
        lines.Report(new DownloadProgress("r/m", "b.json", 2048, 2048)); // a blob already in the cache
        lines.Finish();

        Assert.Equal(
        [
            "  a.safetensors: downloading 100.0 MiB, resuming after 60.0 MiB",
            "  a.safetensors: 80.0 MiB of 100.0 MiB (80%), 4.0 MiB/s, about 5.0 s left",
            "  a.safetensors: interrupted, resuming after 80.0 MiB",
            "  a.safetensors: 100.0 MiB done in 10 s, 4.0 MiB/s",
            "  b.json: 2.0 KiB, already downloaded",
            "Downloaded 40.0 MiB in 1 file in 10 s, 4.0 MiB/s",
        ], output.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(1023, "1023 B")]
    [InlineData(1536, "1.5 KiB")]
    [InlineData(5L * 1024 * 1024 * 1024, "5.0 GiB")]
    public void SizesAreInBinaryUnits(long bytes, string expected) => Assert.Equal(expected, DownloadProgressLines.Size(bytes));

    [Fact]
    public void WithoutASpeedThereIsNoTimeLeftAndAPercentageNeverShows100BeforeTheEnd()
    {
        Assert.Equal("1.0 KiB of 2.0 KiB (50%)", DownloadProgressLines.Describe(1024, 2048, null));
        Assert.StartsWith("999.0 KiB of 1000.0 KiB (99%)", DownloadProgressLines.Describe(999 * 1024, 1000 * 1024, 1024));
        Assert.Equal("3.0 KiB, 1.0 KiB/s", DownloadProgressLines.Describe(3072, 0, 1024));
    }
}
