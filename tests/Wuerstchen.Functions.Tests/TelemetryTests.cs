using System.Diagnostics;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Wuerstchen.Pipeline.Diagnostics;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Workflows;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Telemetry;
using Tags = Wuerstchen.Pipeline.Diagnostics.WuerstchenTelemetry.Tags;

namespace Wuerstchen.Functions.Tests;

/// <summary>
/// A generation on the embedded Durable engine, with the hosts' own telemetry registration
/// (<see cref="TelemetryRegistration.AddWuerstchenTelemetry"/>) exporting to memory: one trace from the submission
/// through the three stage activities, with the request's attributes, and the generation metrics.
/// </summary>
public sealed class TelemetryTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AGenerationIsOneTraceOfItsStagesAndRecordsTheGenerationMetrics()
    {
        var spans = new List<Activity>();
        var metrics = new List<MetricSnapshot>();
        var none = new ConfigurationBuilder().Build();
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, configure: services =>
            services.AddWuerstchenTelemetry(none, otel => otel
                .WithTracing(tracing => tracing.AddInMemoryExporter(spans))
                .WithMetrics(m => m.AddInMemoryExporter(metrics))));
        environment.Services.StartWuerstchenTelemetry();
        var tracer = environment.Services.GetRequiredService<TracerProvider>();
        var meter = environment.Services.GetRequiredService<MeterProvider>();

        var request = new GenerationRequest { Prompt = "a tiny blue dragon", Width = 128, Height = 256, Images = 2, Seed = 5, PriorSteps = 3, DecoderSteps = 2 };
        var started = await environment.Services.GetRequiredService<GenerationService>().StartAsync(environment.Client, request, null, Token);
        Assert.Equal(StartDisposition.Started, started.Disposition);
        string id = started.GenerationId!;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Token);
        timeout.CancelAfter(TimeSpan.FromMinutes(2));
        var done = await environment.Client.WaitForInstanceCompletionAsync(id, timeout.Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.True(tracer.ForceFlush(10_000));
        Assert.True(meter.ForceFlush(10_000));

        Activity[] mine;
        lock (spans)
            mine = spans.Where(s => (s.GetTagItem(Tags.GenerationId) as string) == id).ToArray();
        var submit = Assert.Single(mine, s => s.DisplayName == "GenerateImage submit");
        string[] stages = [StageActivities.StageC, StageActivities.StageB, StageActivities.StageA];
        foreach (string stage in stages)
        {
            var span = Assert.Single(mine, s => s.DisplayName == stage);
            Assert.Equal(submit.TraceId, span.TraceId);
            Assert.Equal(submit.SpanId, span.ParentSpanId);
            Assert.Equal(stage, span.GetTagItem(Tags.Stage));
            Assert.Equal("completed", span.GetTagItem(Tags.Outcome));
            Assert.Equal(ActivityStatusCode.Unset, span.Status);
            Assert.True(span.Duration > TimeSpan.Zero);
        }
        foreach (var span in mine)
        {
            Assert.Equal("warp-ai/wuerstchen-prior", span.GetTagItem(Tags.PriorModel));
            Assert.Equal("warp-ai/wuerstchen", span.GetTagItem(Tags.DecoderModel));
            Assert.Equal(128, span.GetTagItem(Tags.Width));
            Assert.Equal(256, span.GetTagItem(Tags.Height));
            Assert.Equal(2, span.GetTagItem(Tags.BatchImages));
            Assert.Equal(3, span.GetTagItem(Tags.PriorSteps));
            Assert.Equal(2, span.GetTagItem(Tags.DecoderSteps));
        }
        var stageC = mine.Single(s => s.DisplayName == StageActivities.StageC);
        var stageA = mine.Single(s => s.DisplayName == StageActivities.StageA);
        Assert.True(stageC.StartTimeUtc < stageA.StartTimeUtc, "Stage C ran before Stage A");

        // Other tests in this process generate too: the counts are lower bounds, the stage and outcome tags exact.
        Assert.True(Sum(metrics, "wuerstchen.images.generated") >= 2);
        foreach (string stage in stages)
            Assert.True(HistogramCount(metrics, "wuerstchen.stage.duration", p => Tag(p, Tags.Stage) == stage && Tag(p, Tags.Outcome) == "completed") >= 1, $"no {stage} duration");
        Assert.True(HistogramCount(metrics, "wuerstchen.batch.size", _ => true) >= 1);
        Assert.True(HistogramCount(metrics, "wuerstchen.queue.wait", p => Tag(p, Tags.Kind) == "generation") >= 1);
        Assert.True(Sum(metrics, "wuerstchen.model.loads") >= 2, "the prior and the decoder were loaded");
        Assert.True(HistogramCount(metrics, "wuerstchen.model.load.duration", _ => true) >= 2);
        Assert.True(Latest(metrics, "wuerstchen.model.resident_memory").Any(p => p.GetGaugeLastValueLong() > 0),
            "resident model memory reported");
    }

    [Fact]
    public void TelemetryIsOffUnlessAnExporterIsNamedAndABadExporterIsNamedAtStartUp()
    {
        var off = new ServiceCollection();
        Assert.Null(off.AddWuerstchenTelemetry(new ConfigurationBuilder().Build()));
        Assert.DoesNotContain(off, d => d.ServiceType == typeof(TracerProvider));

        var console = new ServiceCollection();
        var settings = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Wuerstchen:Telemetry:Exporter"] = "Console" }).Build();
        Assert.NotNull(console.AddWuerstchenTelemetry(settings));
        using (var provider = console.BuildServiceProvider())
            Assert.NotNull(provider.GetService<TracerProvider>());

        var bad = new ServiceCollection();
        var wrong = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Wuerstchen:Telemetry:Exporter"] = "Zipkin" }).Build();
        Assert.Null(bad.AddWuerstchenTelemetry(wrong));
        using var badProvider = bad.BuildServiceProvider();
        var error = Assert.Throws<OptionsValidationException>(badProvider.ValidateSettings);
        Assert.Contains("Wuerstchen:Telemetry:Exporter", error.Message);
    }

    private static string? Tag(MetricPoint point, string key)
    {
        foreach (var tag in point.Tags)
        {
            if (tag.Key == key)
                return tag.Value?.ToString();
        }
        return null;
    }

    /// <summary>The points of the last export of <paramref name="name"/> (cumulative: everything recorded so far).</summary>
    private static IEnumerable<MetricPoint> Latest(IEnumerable<MetricSnapshot> metrics, string name) =>
        metrics.LastOrDefault(m => m.Name == name)?.MetricPoints ?? [];

    private static long Sum(IEnumerable<MetricSnapshot> metrics, string name) => Latest(metrics, name).Sum(p => p.GetSumLong());

    private static long HistogramCount(IEnumerable<MetricSnapshot> metrics, string name, Func<MetricPoint, bool> where) =>
        Latest(metrics, name).Where(where).Sum(p => p.GetHistogramCount());
}
