using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Azure.Functions.Worker;
using Wuerstchen.Api;

namespace Wuerstchen.Functions;

/// <summary>The API description, its reference page and the web app's static files, as anonymous HTTP triggers.</summary>
public static class WebFunctions
{
    [Function("OpenApiDocument")]
    public static IActionResult OpenApi([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.OpenApi)] HttpRequest request) =>
        ApiDescription.Result();

    [Function("ApiReference")]
    public static IActionResult Reference([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.Reference)] HttpRequest request) =>
        EmbeddedFiles.Reference.Get("index.html");

    [Function("WebAppRoot")]
    public static IActionResult Root([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.WebAppRoot)] HttpRequest request) =>
        WebAppFiles.Root();

    [Function("WebApp")]
    public static IActionResult App([HttpTrigger(AuthorizationLevel.Anonymous, "get", Route = ApiRoutes.WebApp)] HttpRequest request, string? path) =>
        EmbeddedFiles.WebApp.Get(path);
}
