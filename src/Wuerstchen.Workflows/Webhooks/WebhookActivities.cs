using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Bulk;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Workflows.Webhooks;

/// <summary>
/// Where and how to deliver a completion webhook, fixed when the request is accepted and carried in the
/// orchestration's input, so replays see the same values.
/// </summary>
/// <param name="ApiBase">The API's root as the caller reached it (<c>{scheme}://{host}/api/</c>), for the image links of the body.</param>
public sealed record WebhookTarget(string Url, string? ApiBase, RetrySettings Retry)
{
    public TaskOptions ToTaskOptions() => Retry.MaxAttempts <= 1
        ? new TaskOptions()
        : TaskOptions.FromRetryPolicy(new RetryPolicy(Retry.MaxAttempts, Retry.FirstInterval, Retry.BackoffCoefficient, Retry.MaxInterval));
}

/// <summary>A generation's end, to deliver: its status body is built by the activity (never in the orchestrator).</summary>
public sealed record GenerationWebhook(WebhookTarget Target, string GenerationId, BatchRef Batch, string Status, DateTimeOffset CreatedAt,
    DateTimeOffset EndedAt, GenerationResult? Result, string? Error);

/// <summary>A bulk job's end, to deliver: its status body (that of <c>GET /api/bulk/{id}</c>) is built by the activity.</summary>
/// <param name="StartedAt">When the job's orchestration started (null from instances started before this field existed).</param>
public sealed record BulkWebhook(WebhookTarget Target, string JobId, string InstanceId, string Status, DateTimeOffset EndedAt, BulkSummary? Summary, string? Error,
    int CompletedBatches = 0, int TotalBatches = 0, DateTimeOffset? StartedAt = null);

/// <summary>
/// Delivers completion webhooks: one signed POST of the status body (<see cref="WebhookSignature"/>). An attempt that
/// gets no 2xx answer throws, and the orchestration's retry policy (<see cref="WebhookTarget.Retry"/>) tries again
/// with backoff; every attempt carries the same <see cref="WebhookSignature.DeliveryHeader"/>.
/// </summary>
public sealed partial class WebhookActivities(BatchPlanStore plans, IBlobStore store, IOptions<WebhookOptions> options, ILogger<WebhookActivities> logger) : IDisposable
{
    public const string SendGeneration = "SendGenerationWebhook";
    public const string SendBulk = "SendBulkWebhook";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(2), AllowAutoRedirect = false });

    public async Task<int> SendGenerationAsync(GenerationWebhook webhook, CancellationToken cancellationToken)
    {
        GenerationBatch? batch = null;
        try
        {
            batch = await plans.ReadAsync(webhook.Batch, cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
        }
        var status = new GenerationStatus(webhook.GenerationId, webhook.Status, webhook.Status, null, webhook.CreatedAt, webhook.EndedAt,
            webhook.Error, webhook.Result, batch);
        var body = GenerationStatusResponse.From(status, webhook.Target.ApiBase ?? "/api/");
        return await PostAsync(webhook.Target.Url, $"{webhook.GenerationId}-webhook", JsonSerializer.SerializeToUtf8Bytes(body, Json), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Posts the job's status as <c>GET /api/bulk/{id}</c> answers it once the job has ended, the manifest's results included.</summary>
    public async Task<int> SendBulkAsync(BulkWebhook webhook, CancellationToken cancellationToken)
    {
        IReadOnlyList<BulkManifestEntry>? manifest = null;
        if (webhook.Summary is not null)
        {
            try
            {
                manifest = await BulkManifestWriter.ReadAsync(store, webhook.JobId, cancellationToken).ConfigureAwait(false);
            }
            catch (BlobNotFoundException)
            {
            }
        }
        var status = new BulkJobStatus(webhook.JobId, webhook.Status, webhook.CompletedBatches, webhook.TotalBatches,
            Enumerable.Range(0, webhook.TotalBatches).Select(b => BulkGenerateOrchestration.BatchInstanceIdFor(webhook.JobId, b)).ToArray(),
            webhook.Summary, manifest, webhook.Error, webhook.StartedAt ?? webhook.EndedAt, webhook.EndedAt);
        var body = BulkStatusResponse.From(status, webhook.Target.ApiBase ?? "/api/");
        return await PostAsync(webhook.Target.Url, $"{webhook.InstanceId}-webhook", JsonSerializer.SerializeToUtf8Bytes(body, Json), cancellationToken).ConfigureAwait(false);
    }

    private async Task<int> PostAsync(string url, string deliveryId, byte[] body, CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (!settings.Enabled)
            throw new InvalidOperationException($"The webhook for {deliveryId} cannot be signed: {WebhookOptions.Section}:Secret is no longer set.");
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json") { CharSet = "utf-8" };
        request.Headers.TryAddWithoutValidation(WebhookSignature.Header, WebhookSignature.Sign(settings.Secret!, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), body));
        request.Headers.TryAddWithoutValidation(WebhookSignature.DeliveryHeader, deliveryId);
        request.Headers.UserAgent.Add(new ProductInfoHeaderValue("Wuerstchen-Webhook", "1.0"));
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        attempt.CancelAfter(settings.Timeout);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, attempt.Token).ConfigureAwait(false);
            int code = (int)response.StatusCode;
            if (code is < 200 or > 299)
                throw new HttpRequestException($"The webhook {Redacted(url)} answered {code}; the delivery is tried again.", null, response.StatusCode);
            LogDelivered(deliveryId, Redacted(url), code);
            return code;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new HttpRequestException($"The webhook {Redacted(url)} did not answer within {settings.Timeout}; the delivery is tried again.");
        }
    }

    /// <summary>The URL without its query, which may hold the receiver's own token.</summary>
    private static string Redacted(string url) => Uri.TryCreate(url, UriKind.Absolute, out var uri) ? uri.GetLeftPart(UriPartial.Path) : "(invalid URL)";

    [LoggerMessage(Level = LogLevel.Information, Message = "Webhook {DeliveryId} delivered to {Url}: {StatusCode}")]
    private partial void LogDelivered(string deliveryId, string url, int statusCode);

    public void Dispose() => _http.Dispose();
}

/// <summary>The orchestrators' side: call the delivery activity, and never let a webhook that keeps failing fail the work it reports on.</summary>
public static partial class WebhookCalls
{
    public static async Task NotifyAsync(TaskOrchestrationContext context, string activity, WebhookTarget target, object webhook)
    {
        try
        {
            await context.CallActivityAsync<int>(activity, webhook, target.ToTaskOptions());
        }
        catch (TaskFailedException e)
        {
            LogNotDelivered(context.CreateReplaySafeLogger(typeof(WebhookCalls)), context.InstanceId, target.Retry.MaxAttempts, e.FailureDetails.ErrorMessage);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The webhook of {InstanceId} was not delivered after {Attempts} attempts: {Error}")]
    private static partial void LogNotDelivered(ILogger logger, string instanceId, int attempts, string error);
}
