using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Wuerstchen.Api;

/// <summary>
/// Who is calling, as far as the host says: the scope idempotency keys live in, so one caller's key never attaches to
/// another caller's work. In order: the function key's id (the host's <c>keyid</c> claim on an authenticated key
/// identity), or where the host does not pass its identities on (HTTP proxied to the isolated worker) the function key
/// the request presented, hashed; an authenticated user principal (its name identifier, qualified by its authentication type); the
/// principal headers of App Service / Container Apps built-in authentication, only where
/// <see cref="ApiOptions.TrustClientPrincipalHeaders"/> says the platform sets them (it strips client-sent copies only
/// when that authentication is on). Null when none is available: keys are then shared by every caller of the app.
/// </summary>
public static class CallerIdentity
{
    public const string KeyIdClaim = "http://schemas.microsoft.com/2017/07/functions/claims/keyid";
    public const string FunctionKeyHeader = "x-functions-key";
    public const string PrincipalIdHeader = "X-MS-CLIENT-PRINCIPAL-ID";
    public const string PrincipalIdpHeader = "X-MS-CLIENT-PRINCIPAL-IDP";

    public static string? Of(HttpRequest request, ApiOptions options)
    {
        var identities = request.HttpContext.User?.Identities.Where(i => i.IsAuthenticated).ToArray() ?? [];
        if (identities.Select(i => i.FindFirst(KeyIdClaim)?.Value).FirstOrDefault(v => !string.IsNullOrEmpty(v)) is { } keyId)
            return $"key:{keyId}";
        // Under the Functions host the worker receives HTTP requests proxied, without the host's identities (the keyid
        // claim never reaches it): the function key the host checked stands for its caller, hashed so no secret is kept.
        if (PresentedKey(request) is { Length: > 0 } presented)
            return "key-sha256:" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(presented)))[..32];
        foreach (var identity in identities)
        {
            if (identity.FindFirst(ClaimTypes.NameIdentifier)?.Value is { Length: > 0 } user)
                return $"principal:{identity.AuthenticationType}/{user}";
        }
        if (options.TrustClientPrincipalHeaders && request.Headers[PrincipalIdHeader].FirstOrDefault() is { Length: > 0 } principal)
            return $"principal:{request.Headers[PrincipalIdpHeader].FirstOrDefault()}/{principal}";
        return null;
    }

    private static string? PresentedKey(HttpRequest request) =>
        request.Headers[FunctionKeyHeader].FirstOrDefault() ?? request.Query["code"].FirstOrDefault();

    /// <summary>The key as the generation service sees it: <paramref name="key"/> within the caller's scope (unchanged without one).</summary>
    public static string? Scope(string? key, string? caller) => key is null || caller is null ? key : $"{caller}\n{key}";
}
