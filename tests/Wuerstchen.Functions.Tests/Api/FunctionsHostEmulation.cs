using System.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Abstractions;
using Microsoft.AspNetCore.Routing;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask.Client;
using Microsoft.Extensions.DependencyInjection;

namespace Wuerstchen.Functions.Tests.Api;

/// <summary>An HTTP trigger of the Functions app as its attributes declare it.</summary>
public sealed record DeclaredTrigger(string Name, string Method, string Route, AuthorizationLevel Level, MethodInfo Function);

/// <summary>
/// The Functions app's HTTP triggers as the Functions host serves them, read from their attributes alone (not from the
/// route table): the host routes by each trigger's route and methods with ASP.NET Core routing (empty route prefix,
/// host.json), checks the function key on <see cref="AuthorizationLevel.Function"/> triggers, binds route values to the
/// parameters of the same name, and executes the returned <see cref="IActionResult"/> with MVC's executors.
/// </summary>
public static class FunctionsHostEmulation
{
    public static IReadOnlyList<DeclaredTrigger> Triggers() =>
        typeof(HealthFunctions).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Function: m.GetCustomAttribute<FunctionAttribute>(),
                Trigger: m.GetParameters().Select(p => p.GetCustomAttribute<HttpTriggerAttribute>()).FirstOrDefault(a => a is not null)))
            .Where(x => x.Function is not null && x.Trigger is not null)
            .SelectMany(x => x.Trigger!.Methods!.Select(method => new DeclaredTrigger(x.Function!.Name, method.ToUpperInvariant(), x.Trigger.Route!, x.Trigger.AuthLevel, x.Method)))
            .ToArray();

    public static void Map(IEndpointRouteBuilder endpoints, IServiceProvider services, DurableTaskClient client, string key)
    {
        foreach (var trigger in Triggers())
        {
            endpoints.MapMethods("/" + trigger.Route, [trigger.Method], async context =>
            {
                IActionResult result;
                string? given = context.Request.Headers["x-functions-key"].FirstOrDefault() ?? context.Request.Query["code"].FirstOrDefault();
                if (trigger.Level != AuthorizationLevel.Anonymous && given != key)
                    result = new UnauthorizedResult();
                else
                    result = await InvokeAsync(trigger.Function, context, services, client);
                await result.ExecuteResultAsync(new ActionContext(context, context.GetRouteData(), new ActionDescriptor()));
            });
        }
    }

    private static async Task<IActionResult> InvokeAsync(MethodInfo function, HttpContext context, IServiceProvider services, DurableTaskClient client)
    {
        object? target = function.IsStatic ? null : ActivatorUtilities.CreateInstance(services, function.DeclaringType!);
        object?[] arguments = function.GetParameters().Select<ParameterInfo, object?>(p => p.ParameterType switch
        {
            var t when t == typeof(HttpRequest) => context.Request,
            var t when t == typeof(DurableTaskClient) => client,
            var t when t == typeof(CancellationToken) => context.RequestAborted,
            var t when t == typeof(int) => int.Parse((string)context.Request.RouteValues[p.Name!]!, System.Globalization.CultureInfo.InvariantCulture),
            var t when t == typeof(string) => context.Request.RouteValues[p.Name!] as string,
            var t => throw new InvalidOperationException($"{function.Name}: the emulation cannot bind {t.Name} {p.Name}."),
        }).ToArray();
        return function.Invoke(target, arguments) switch
        {
            Task<IActionResult> task => await task,
            IActionResult done => done,
            var other => throw new InvalidOperationException($"{function.Name} returned {other?.GetType().Name}."),
        };
    }
}
