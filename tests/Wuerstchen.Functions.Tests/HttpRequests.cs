using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;

namespace Wuerstchen.Functions.Tests;

/// <summary>Requests as the Functions host's ASP.NET Core integration hands them to an HTTP trigger.</summary>
public static class HttpRequests
{
    public static HttpRequest Make(string method, string path, string? body = null, IDictionary<string, string>? headers = null, string? query = null)
    {
        var context = new DefaultHttpContext();
        var request = context.Request;
        request.Method = method;
        request.Scheme = "https";
        request.Host = new HostString("wuerstchen.test");
        request.Path = path;
        if (query is not null)
            request.QueryString = new QueryString(query);
        if (body is not null)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(body);
            request.Body = new MemoryStream(bytes);
            request.ContentLength = bytes.Length;
            request.ContentType = "application/json";
        }
        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
            request.Headers[name] = value;
        context.Response.Body = new MemoryStream();
        return request;
    }

    public static string Json(object value) => JsonSerializer.Serialize(value, new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static int StatusOf(IActionResult result) => result switch
    {
        ObjectResult o => o.StatusCode ?? 200,
        StatusCodeResult s => s.StatusCode,
        FileStreamResult => 200,
        RedirectResult => 302,
        _ => throw new InvalidOperationException($"Unexpected result {result.GetType().Name}."),
    };
}
