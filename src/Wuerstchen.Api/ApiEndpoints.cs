using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Wuerstchen.Api;

/// <summary>
/// Maps the route table on an ASP.NET Core app (Kestrel, for <c>wuerstchen serve</c>): each route runs the same handler
/// the Functions trigger runs, and its <see cref="IActionResult"/> is executed the way the Functions host's ASP.NET Core
/// integration executes it (MVC's result executors), so both hosts write the same status, headers and body.
/// </summary>
public static class ApiEndpoints
{
    /// <summary>What the endpoints need from the web host's own container: MVC's result executors and JSON writers.</summary>
    public static IServiceCollection AddWuerstchenApiEndpoints(this IServiceCollection services)
    {
        services.AddMvcCore();
        return services;
    }

    /// <param name="services">The workflows' services (the engine's container): handlers, options, store.</param>
    /// <param name="client">The Durable client of the engine the routes start and inspect orchestrations on.</param>
    /// <param name="apiKey">When set, every route but the anonymous ones answers 401 without it.</param>
    public static IEndpointRouteBuilder MapWuerstchenApi(this IEndpointRouteBuilder endpoints, IServiceProvider services, DurableTaskClient client, string? apiKey)
    {
        foreach (var route in ApiRoutes.All)
        {
            endpoints.MapMethods("/" + route.Template, [route.Method], async context =>
            {
                IActionResult result = route.Access == RouteAccess.Key && apiKey is not null && !ApiKeys.Carries(context.Request, apiKey)
                    ? new UnauthorizedResult()
                    : await route.Handle(new ApiCall(context.Request, client, services, context.RequestAborted));
                await result.ExecuteResultAsync(new ActionContext(context, context.GetRouteData(), new ActionDescriptor()));
            }).WithName(route.Name).WithDisplayName($"{route.Method} /{route.Template}");
        }
        return endpoints;
    }

    /// <summary>The handlers of the route table, for the container that holds the workflows' services.</summary>
    public static IServiceCollection AddWuerstchenApiHandlers(this IServiceCollection services)
    {
        services.TryAddSingleton<GenerationApi>();
        services.TryAddSingleton<FineTuneApi>();
        services.TryAddSingleton<HealthApi>();
        services.TryAddSingleton<GalleryApi>();
        services.TryAddSingleton<BulkApi>();
        services.TryAddSingleton<FineTuneHistoryApi>();
        services.TryAddSingleton<InstalledModelsApi>();
        return services;
    }
}
