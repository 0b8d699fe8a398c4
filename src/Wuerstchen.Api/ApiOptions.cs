using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Workflows;

namespace Wuerstchen.Api;

public enum ImageDelivery
{
    /// <summary>The PNG bytes in the response.</summary>
    Stream,

    /// <summary>A redirect to a short-lived read-only link (SAS), where the store can make one.</summary>
    Link,
}

/// <summary>HTTP API behaviour. Bound from <c>Wuerstchen:Api</c>.</summary>
public sealed class ApiOptions
{
    public const string Section = "Wuerstchen:Api";

    /// <summary>The longest a SAS link may live: Azure Storage signs user delegation keys for at most 7 days.</summary>
    public static readonly TimeSpan MaxLinkLifetime = TimeSpan.FromDays(7);

    /// <summary>The longest a request may wait: the platform's load balancers cut HTTP requests after 230 s.</summary>
    public static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(230);

    public ImageDelivery ImageDelivery { get; set; } = ImageDelivery.Stream;

    public TimeSpan LinkLifetime { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>The longest a POST may wait (<c>?wait=seconds</c>) for a small job to finish before answering 202.</summary>
    public TimeSpan MaxWait { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>The largest request body read; a larger one is answered 413 before the rest of it is read.</summary>
    public long MaxBodyBytes { get; set; } = 1 << 20;

    /// <summary>
    /// Whether the app sits behind App Service / Container Apps built-in authentication, which sets (and strips
    /// client-sent) <c>X-MS-CLIENT-PRINCIPAL-*</c> headers: only then do they scope idempotency keys.
    /// </summary>
    public bool TrustClientPrincipalHeaders { get; set; }

    /// <summary>The Stage C model of a generation request that names none (null: warp-ai/wuerstchen-prior); <c>serve --prior-model</c>.</summary>
    public string? DefaultPriorModel { get; set; }

    /// <summary>The Stage B/A model of a generation request that names none (null: warp-ai/wuerstchen); <c>serve --decoder-model</c>.</summary>
    public string? DefaultDecoderModel { get; set; }

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Enum.IsDefined(ImageDelivery))
            errors.Add($"{Section}:ImageDelivery is '{ImageDelivery}'; use Stream or Link.");
        if (LinkLifetime < TimeSpan.FromMinutes(1) || LinkLifetime > MaxLinkLifetime)
            errors.Add($"{Section}:LinkLifetime is {LinkLifetime}; use 00:01:00 … 7.00:00:00 (a read link is signed for at most 7 days).");
        if (MaxWait < TimeSpan.Zero || MaxWait > RequestTimeout)
            errors.Add($"{Section}:MaxWait is {MaxWait}; use 0 … {RequestTimeout} (HTTP requests are cut after 230 s).");
        if (MaxBodyBytes < 1024)
            errors.Add($"{Section}:MaxBodyBytes is {MaxBodyBytes}; allow at least 1024 bytes.");
        return errors;
    }
}

public static class ApiServiceCollectionExtensions
{
    /// <summary>The HTTP API's options (<c>Wuerstchen:Api</c>), validated when the host starts.</summary>
    public static IServiceCollection AddWuerstchenApi(this IServiceCollection services, IConfiguration configuration) =>
        services.AddValidatedOptions<ApiOptions>(configuration, ApiOptions.Section, o => o.Validate()).AddWuerstchenApiHandlers();
}
