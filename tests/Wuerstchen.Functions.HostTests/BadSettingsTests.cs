using System.Diagnostics;
using System.Net;
using Wuerstchen.Functions.HostTests.Infrastructure;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Functions.HostTests;

/// <summary>Azurite, the host and a model folder for hosts started with a bad setting, each on its own task hub, queue and container.</summary>
public sealed class BadSettingsFixture : IAsyncLifetime
{
    private readonly TempDirectory _temp = new();

    public Azurite Azurite { get; private set; } = null!;
    public string HostBin { get; private set; } = "";
    public string ModelRoot { get; private set; } = "";
    public string StateRoot => _temp.Path;

    public async ValueTask InitializeAsync()
    {
        HostFixture.CleanArtifacts();
        HostBin = await Repository.BuildHostAsync(CancellationToken.None);
        Azurite = await Azurite.StartAsync(CancellationToken.None);
        ModelRoot = HostFixture.ModelRoot(_temp);
    }

    public async ValueTask DisposeAsync()
    {
        await Azurite.DisposeAsync();
        _temp.Dispose();
        Timings.Write();
    }
}

[CollectionDefinition(Name)]
public sealed class BadSettingsCollection : ICollectionFixture<BadSettingsFixture>
{
    public const string Name = "Functions host with bad settings";
}

/// <summary>A missing or invalid setting stops the app at start-up under the real host, with a message that names it.</summary>
[Collection(BadSettingsCollection.Name)]
public sealed class BadSettingsTests(BadSettingsFixture fixture)
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);

    /// <summary>(what is wrong, the change to the example settings, what the message must name).</summary>
    private static readonly Dictionary<string, (Func<AppSettings, AppSettings> Change, string Named)> Cases = new()
    {
        // The example also names an explicit folder for the EfficientNet encoder, which alone would satisfy the check.
        ["a missing model folder"] = (s => s.Without("Wuerstchen__Models__Root").Without("Wuerstchen__Models__Paths__effnet"), "Wuerstchen:Models:Root"),
        ["an unknown storage kind"] = (s => s.With("Wuerstchen__Storage__Kind", "Tape"), "Wuerstchen:Storage:Kind"),
        ["an unreadable wait limit"] = (s => s.With("Wuerstchen__Api__MaxWait", "soon"), "Wuerstchen:Api:MaxWait"),
        ["a missing bulk queue name"] = (s => s.Without("Wuerstchen__Bulk__QueueName"), "Wuerstchen:Bulk:QueueName"),
        ["a missing task hub name"] = (s => s.Without("WUERSTCHEN_TASK_HUB"), "WUERSTCHEN_TASK_HUB"),
        // A host.json value overridden the way app settings override host.json (AzureFunctionsJobHost__…).
        ["a partition count out of range"] = (s => s.With("AzureFunctionsJobHost__extensions__durableTask__storageProvider__partitionCount", "17"),
            "PartitionCount must be an integer value between 1 and 16"),
    };

    public static TheoryData<string> Names => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(Names))]
    public async Task TheAppDoesNotStartAndTheLogNamesTheSetting(string name)
    {
        var (change, named) = Cases[name];
        int index = Cases.Keys.ToList().IndexOf(name);
        // Each bad host gets its own task hub, queue and container, so nothing it starts can touch another's.
        var settings = change(AppSettings.ForThisMachine(fixture.Azurite, fixture.Azurite.BlobPort, fixture.ModelRoot, Path.Combine(fixture.StateRoot, $"cache-{index}"))
            .With("WUERSTCHEN_TASK_HUB", $"bad{index}").With("Wuerstchen__Bulk__QueueName", $"bad-jobs-{index}").With("Wuerstchen__Storage__Container", $"bad-{index}"));
        await using var badHost = new FunctionsHost($"bad-settings-{index}", fixture.HostBin, Repository.AppOutput, Path.Combine(fixture.StateRoot, $"state-{index}"), settings.Values);
        var clock = Stopwatch.StartNew();
        badHost.Start();

        LogEntry? namedIn = null;
        while (namedIn is null)
        {
            Assert.True(clock.Elapsed < Limit, $"no error naming '{named}' within {Limit.TotalMinutes:0} min (log: {badHost.Log.Path})");
            namedIn = badHost.Log.Entries.FirstOrDefault(e => e.Level is "fail" or "crit" && e.Message.Contains(named, StringComparison.Ordinal)
                                                             || e.Category == "Host.Function.Console" && e.Message.Contains(named, StringComparison.Ordinal));
            await AssertNotServingAsync(badHost);
            await Task.Delay(250, TestContext.Current.CancellationToken);
        }
        // Still not serving once the error is out: start-up stopped.
        await Task.Delay(TimeSpan.FromSeconds(2), TestContext.Current.CancellationToken);
        await AssertNotServingAsync(badHost);
        Timings.Record($"bad setting ({name}): start to the error naming it", clock.Elapsed);
        await badHost.KillAsync(); // a host that keeps recycling its worker may take long to shut down

    }

    private static async Task AssertNotServingAsync(FunctionsHost host)
    {
        try
        {
            using var response = await host.Http.GetAsync("api/health/live", TestContext.Current.CancellationToken);
            Assert.True(response.StatusCode != HttpStatusCode.OK, $"the app serves requests despite the bad setting (log: {host.Log.Path})");
        }
        catch (HttpRequestException)
        {
            // Not listening (yet): not serving.
        }
    }
}
