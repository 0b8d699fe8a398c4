using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Functions.Tests.Api;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;
using Wuerstchen.Workflows.Webhooks;

namespace Wuerstchen.Functions.Tests;

/// <summary>Completion webhooks: signed, delivered once per generation or bulk job, retried with backoff, refused at request time when unusable.</summary>
public sealed class WebhookTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private const string Secret = "test-webhook-secret-0123456789abcdef0123456789";

    private static Dictionary<string, string?> WebhookSettings(bool allowLoopback = true, int maxAttempts = 5, string? secret = Secret) => new()
    {
        ["Wuerstchen:Webhooks:Secret"] = secret,
        ["Wuerstchen:Webhooks:AllowLoopback"] = allowLoopback ? "true" : "false",
        ["Wuerstchen:Webhooks:Retry:MaxAttempts"] = maxAttempts.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Wuerstchen:Webhooks:Retry:FirstInterval"] = "00:00:00.100",
        ["Wuerstchen:Webhooks:Retry:MaxInterval"] = "00:00:00.500",
    };

    private sealed record Delivery(string? Signature, string? DeliveryId, byte[] Body);

    /// <summary>A receiver on a loopback port that answers 500 to its first <paramref name="failures"/> calls, then 200.</summary>
    private sealed class Receiver(LoopbackHost host, ConcurrentQueue<Delivery> deliveries) : IAsyncDisposable
    {
        public ConcurrentQueue<Delivery> Deliveries { get; } = deliveries;

        public string Url => new Uri(host.Address, "hook").ToString();

        public static async Task<Receiver> StartAsync(int failures)
        {
            var deliveries = new ConcurrentQueue<Delivery>();
            int calls = 0;
            var host = await LoopbackHost.StartAsync(app => app.MapPost("/hook", async (HttpContext context) =>
            {
                using var buffer = new MemoryStream();
                await context.Request.Body.CopyToAsync(buffer);
                deliveries.Enqueue(new Delivery(context.Request.Headers[WebhookSignature.Header], context.Request.Headers[WebhookSignature.DeliveryHeader], buffer.ToArray()));
                context.Response.StatusCode = Interlocked.Increment(ref calls) <= failures ? 500 : 200;
            }));
            return new Receiver(host, deliveries);
        }

        public ValueTask DisposeAsync() => host.DisposeAsync();
    }

    private static string Request(string? webhook) => HttpRequests.Json(new { prompt = "a small red dragon", width = 128, height = 128, images = 2, seed = 7, priorSteps = 2, decoderSteps = 2, webhook });

    private static async Task<string> StartAsync(TestEnvironment environment, string body)
    {
        var started = Assert.IsType<AcceptedResult>(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", body), environment.Client, Token));
        return Assert.IsType<StartedResponse>(started.Value).Id;
    }

    [Fact]
    public async Task AFinishedGenerationPostsItsSignedStatusOnceRetryingAfterFailures()
    {
        await using var receiver = await Receiver.StartAsync(failures: 2);
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: WebhookSettings());
        string id = await StartAsync(environment, Request(receiver.Url));
        var done = await environment.Client.WaitForInstanceCompletionAsync(id, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        await Task.Delay(500, Token); // nothing more may arrive

        var deliveries = receiver.Deliveries.ToArray();
        Assert.Equal(3, deliveries.Length); // two answered 500 and were retried; the third was taken, and the last
        Assert.All(deliveries, d => Assert.Equal($"{id}-webhook", d.DeliveryId));
        Assert.All(deliveries, d => Assert.True(WebhookSignature.Verify(Secret, d.Signature, d.Body, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5)), d.Signature));
        var last = deliveries[^1];
        Assert.False(WebhookSignature.Verify(Secret + "x", last.Signature, last.Body, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5)));
        byte[] tampered = (byte[])last.Body.Clone();
        tampered[^2] ^= 1;
        Assert.False(WebhookSignature.Verify(Secret, last.Signature, tampered, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify(Secret, last.Signature, last.Body, DateTimeOffset.UtcNow.AddHours(1), TimeSpan.FromMinutes(5)));

        var body = JsonSerializer.Deserialize<GenerationStatusResponse>(last.Body, new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        Assert.Equal((id, "Completed"), (body.Id, body.Status));
        Assert.Equal([$"https://wuerstchen.test/api/generations/{id}/images/0", $"https://wuerstchen.test/api/generations/{id}/images/1"], body.Images);
        Assert.Equal("a small red dragon", body.Recipe!.Items[0].Prompt);
        Assert.DoesNotContain("webhook", Encoding.UTF8.GetString(last.Body), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task AWebhookThatKeepsFailingIsTriedItsAttemptsAndTheGenerationStillCompletes()
    {
        await using var receiver = await Receiver.StartAsync(failures: int.MaxValue);
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: WebhookSettings(maxAttempts: 3));
        string id = await StartAsync(environment, Request(receiver.Url));
        var done = await environment.Client.WaitForInstanceCompletionAsync(id, Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        await Task.Delay(500, Token);
        Assert.Equal(3, receiver.Deliveries.Count);
    }

    [Fact]
    public async Task AnUnusableWebhookIsRefusedAsAFieldErrorBeforeAnythingStarts()
    {
        await using var local = await TestEnvironment.StartAsync(useAzurite: false, settings: WebhookSettings(allowLoopback: false));
        await using var off = await TestEnvironment.StartAsync(useAzurite: false, settings: WebhookSettings(secret: null));
        var cases = new (TestEnvironment Environment, string Url, string Says)[]
        {
            (local, "http://example.com/hook", "https"),
            (local, "https://127.0.0.1:8443/hook", "Loopback"),
            (local, "http://localhost/hook", "Loopback"),
            (local, "ftp://example.com/hook", "not an absolute http(s) URL"),
            (local, "hook", "not an absolute http(s) URL"),
            (local, "https://user:pass@example.com/hook", "user name"),
            (off, "https://example.com/hook", "Webhooks are off"),
        };
        foreach (var (environment, url, says) in cases)
        {
            var answer = Assert.IsType<BadRequestObjectResult>(await environment.Http.Start(HttpRequests.Make("POST", "/api/generations", Request(url)), environment.Client, Token));
            var problem = Assert.IsType<ValidationProblemDetails>(answer.Value);
            Assert.Equal(["webhook"], problem.Errors.Keys);
            Assert.Contains(says, problem.Errors["webhook"][0]);
        }
        var instances = local.Client.GetAllInstancesAsync(new OrchestrationQuery());
        await foreach (var instance in instances)
            Assert.Fail($"{instance.InstanceId} was started");
    }

    [Fact]
    public async Task ABulkJobPostsItsSummaryOnceWhenItEndsAndABadWebhookRejectsTheJob()
    {
        await using var receiver = await Receiver.StartAsync(failures: 1);
        await using var environment = await TestEnvironment.StartAsync(useAzurite: false, settings: WebhookSettings());
        var intake = environment.Services.GetRequiredService<BulkJobIntake>();
        var settings = new { width = 128, height = 128, priorSteps = 2, decoderSteps = 2, seed = 5 };

        var refused = await intake.AcceptAsync(environment.Client, HttpRequests.Json(new { jobId = "hooked-bad", settings, prompts = new[] { "a" }, webhook = "http://example.com/x" }), "m0", Token);
        Assert.Equal(IntakeDisposition.Rejected, refused.Disposition);
        Assert.StartsWith("webhook: ", refused.Reason);

        var started = await intake.AcceptAsync(environment.Client, HttpRequests.Json(new { jobId = "hooked", settings, prompts = new[] { "a red circle", "a blue square" }, webhook = receiver.Url }), "m1", Token);
        Assert.Equal(IntakeDisposition.Started, started.Disposition);
        var done = await environment.Client.WaitForInstanceCompletionAsync(BulkGenerateOrchestration.InstanceIdFor("hooked"), Token);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        await Task.Delay(500, Token);

        var deliveries = receiver.Deliveries.ToArray();
        Assert.Equal(2, deliveries.Length);
        Assert.All(deliveries, d => Assert.True(WebhookSignature.Verify(Secret, d.Signature, d.Body, DateTimeOffset.UtcNow, TimeSpan.FromMinutes(5))));
        var json = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var body = JsonSerializer.Deserialize<BulkStatusResponse>(deliveries[^1].Body, json)!;
        Assert.Equal(("hooked", "Completed", 2, 2), (body.Id, body.Status, body.Summary!.Total, body.Summary.Succeeded));

        // The body is what GET /api/bulk/{id} answers for the ended job: the same fields, batches, summary and results;
        // only the links' host differs (a queued job's webhook links are relative to the API's root).
        var bulk = new Wuerstchen.Functions.Bulk.BulkHttpFunctions(environment.Services.GetRequiredService<Wuerstchen.Api.BulkApi>());
        var got = Assert.IsType<BulkStatusResponse>(Assert.IsType<OkObjectResult>(
            await bulk.Get(HttpRequests.Make("GET", "/api/bulk/hooked"), environment.Client, "hooked", Token)).Value);
        Assert.Equal(PropertyNames(JsonSerializer.SerializeToUtf8Bytes(got, json)), PropertyNames(deliveries[^1].Body));
        Assert.Equal((got.Id, got.Status, got.CompletedBatches, got.TotalBatches, got.Summary, got.Error),
            (body.Id, body.Status, body.CompletedBatches, body.TotalBatches, body.Summary, body.Error));
        Assert.Equal(got.Batches, body.Batches);
        Assert.Equal(2, body.Results!.Count);
        Assert.Equal(got.Results!.Select(r => (r.Index, r.Prompt, r.Status, r.Images.Count)), body.Results.Select(r => (r.Index, r.Prompt, r.Status, r.Images.Count)));
        Assert.All(body.Results, r => Assert.All(r.Images, link => Assert.StartsWith("/api/bulk/hooked/images/", link)));
        Assert.Equal("/api/bulk/hooked/manifest", body.ManifestUrl);
        Assert.EndsWith(body.ManifestUrl, got.ManifestUrl);
    }

    private static string[] PropertyNames(byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
    }
}
