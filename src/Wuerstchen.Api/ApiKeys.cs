using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Wuerstchen.Api;

/// <summary>
/// The API key of <c>wuerstchen serve --api-key</c>, carried as the Functions host carries a function key: the
/// <c>x-functions-key</c> header or the <c>code</c> query parameter. Compared in constant time.
/// </summary>
public static class ApiKeys
{
    public const string Header = "x-functions-key";
    public const string Query = "code";

    public static bool Carries(HttpRequest request, string key)
    {
        string? given = request.Headers[Header].FirstOrDefault() ?? request.Query[Query].FirstOrDefault();
        return given is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(key));
    }
}
