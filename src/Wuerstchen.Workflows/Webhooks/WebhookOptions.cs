namespace Wuerstchen.Workflows.Webhooks;

/// <summary>Completion webhooks of generations and bulk jobs. Bound from <c>Wuerstchen:Webhooks</c>.</summary>
public sealed class WebhookOptions
{
    public const string Section = "Wuerstchen:Webhooks";

    /// <summary>The shortest secret accepted: 32 characters (HMAC-SHA256 gains nothing from keys past its 64-byte block, and little below 32).</summary>
    public const int MinSecretLength = 32;

    /// <summary>
    /// The HMAC-SHA256 key that signs every delivery (<see cref="WebhookSignature"/>). Empty: webhooks are off, and a
    /// request that names one is refused with a field error.
    /// </summary>
    public string? Secret { get; set; }

    /// <summary>
    /// Whether <c>http</c> and <c>https</c> URLs on the loopback interface are allowed; <c>wuerstchen serve</c> turns
    /// it on, since caller and service share the machine. Otherwise only <c>https</c> URLs of other hosts are.
    /// </summary>
    public bool AllowLoopback { get; set; }

    /// <summary>How long one delivery attempt may take before it counts as failed.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Attempts and backoff of a delivery: a failed attempt (no answer, or a status other than 2xx) is tried again.</summary>
    public RetrySettings Retry { get; set; } = new() { MaxAttempts = 5, FirstInterval = TimeSpan.FromSeconds(5), BackoffCoefficient = 2, MaxInterval = TimeSpan.FromMinutes(5) };

    public bool Enabled => !string.IsNullOrEmpty(Secret);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (Secret is { Length: > 0 } secret && secret.Length < MinSecretLength)
            errors.Add($"{Section}:Secret has {secret.Length} characters; use at least {MinSecretLength} (e.g. openssl rand -hex 32), or leave it empty to turn webhooks off.");
        if (Timeout < TimeSpan.FromSeconds(1) || Timeout > TimeSpan.FromMinutes(2))
            errors.Add($"{Section}:Timeout is {Timeout}; use 00:00:01 … 00:02:00.");
        if (Retry.MaxAttempts is < 1 or > 20)
            errors.Add($"{Section}:Retry:MaxAttempts is {Retry.MaxAttempts}; use 1 … 20.");
        if (Retry.FirstInterval <= TimeSpan.Zero || Retry.FirstInterval > TimeSpan.FromHours(1))
            errors.Add($"{Section}:Retry:FirstInterval is {Retry.FirstInterval}; use a wait above zero and at most an hour.");
        if (!double.IsFinite(Retry.BackoffCoefficient) || Retry.BackoffCoefficient < 1 || Retry.BackoffCoefficient > 10)
            errors.Add($"{Section}:Retry:BackoffCoefficient is {Retry.BackoffCoefficient}; use 1 … 10.");
        if (Retry.MaxInterval < Retry.FirstInterval || Retry.MaxInterval > TimeSpan.FromDays(1))
            errors.Add($"{Section}:Retry:MaxInterval is {Retry.MaxInterval}; use at least {Section}:Retry:FirstInterval and at most a day.");
        return errors;
    }

    /// <summary>Why <paramref name="url"/> cannot be a webhook, in the caller's terms; null when it can.</summary>
    public string? Problem(string url)
    {
        if (!Enabled)
            return $"Webhooks are off on this service ({Section}:Secret is not set).";
        if (url.Length > 2048)
            return "The URL is longer than 2048 characters.";
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || string.IsNullOrEmpty(uri.Host))
            return $"'{url}' is not an absolute http(s) URL.";
        if (!string.IsNullOrEmpty(uri.UserInfo))
            return "The URL must not carry a user name or password.";
        if (uri.IsLoopback)
        {
            return AllowLoopback ? null
                : "Loopback addresses are allowed only when serving locally (wuerstchen serve); use an https URL of another host.";
        }
        return uri.Scheme == "https" ? null : "The URL must be https (http is allowed only for loopback when serving locally).";
    }
}
