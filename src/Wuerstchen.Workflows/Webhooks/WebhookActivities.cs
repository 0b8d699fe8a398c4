using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.DurableTask;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wuerstchen.Pipeline.Bulk;
using Wuerstchen.Pipeline.Generation;
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

/// <summary>A bulk job's end, to deliver.</summary>
public sealed record BulkWebhook(WebhookTarget Target, string JobId, string InstanceId, string Status, DateTimeOffset EndedAt, BulkSummary? Summary, string? Error);

/// <summary>The body of a bulk job's webhook: its status and, when it completed, the manifest's summary.</summary>
public sealed record BulkWebhookBody(string Id, string InstanceId, string Status, DateTimeOffset LastUpdatedAt, string? Error, BulkSummary? Summary);

/// <summary>
/// Delivers completion webhooks: one signed POST of the status body (<see cref="WebhookSignature"/>). An attempt that
/// gets no 2xx answer throws, and the orchestration's retry policy (<see cref="WebhookTarget.Retry"/>) tries again
/// with backoff; every attempt carries the same <see cref="WebhookSignature.DeliveryHeader"/>.
/// </summary>
public sealed partial class WebhookActivities(BatchPlanStore plans, IOptions<WebhookOptions> options, ILogger<WebhookActivities> logger) : IDisposable
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
        catch (Pipeline.Storage.BlobNotFoundException)
        {
        }
        var status = new GenerationStatus(webhook.GenerationId, webhook.Status, webhook.Status, null, webhook.CreatedAt, webhook.EndedAt,
            webhook.Error, webhook.Result, batch);
        var body = GenerationStatusResponse.From(status, webhook.Target.ApiBase ?? "/api/");
        return await PostAsync(webhook.Target.Url, $"{webhook.GenerationId}-webhook", JsonSerializer.SerializeToUtf8Bytes(body, Json), cancellationToken).ConfigureAwait(false);
    }

    public Task<int> SendBulkAsync(BulkWebhook webhook, CancellationToken cancellationToken)
    {
        var body = new BulkWebhookBody(webhook.JobId, webhook.InstanceId, webhook.Status, webhook.EndedAt, webhook.Error, webhook.Summary);
        return PostAsync(webhook.Target.Url, $"{webhook.InstanceId}-webhook", JsonSerializer.SerializeToUtf8Bytes(body, Json), cancellationToken);
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
