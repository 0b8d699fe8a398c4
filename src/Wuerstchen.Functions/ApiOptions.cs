namespace Wuerstchen.Functions;

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
}
