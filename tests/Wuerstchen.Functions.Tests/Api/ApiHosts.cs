using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Wuerstchen.Functions.Tests.Api;

/// <summary>A Kestrel app on a free loopback port over a test environment's services, with the routes <paramref name="map"/> maps.</summary>
public sealed class LoopbackHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LoopbackHost(WebApplication app, Uri address)
    {
        _app = app;
        Address = address;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(3) };
    }

    public Uri Address { get; }

    public HttpClient Client { get; }

    public static async Task<LoopbackHost> StartAsync(Action<IEndpointRouteBuilder> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        builder.Services.AddWuerstchenApiEndpoints();
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        string address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new LoopbackHost(app, new Uri(address.TrimEnd('/') + "/"));
    }

    /// <summary>What <c>wuerstchen serve</c> runs: the route table on Kestrel.</summary>
    public static Task<LoopbackHost> ServeAsync(TestEnvironment environment, string? apiKey) =>
        StartAsync(endpoints => endpoints.MapWuerstchenApi(environment.Services, environment.Client, apiKey));

    /// <summary>The Functions app's triggers as the Functions host routes and runs them.</summary>
    public static Task<LoopbackHost> FunctionsAsync(TestEnvironment environment, string key) =>
        StartAsync(endpoints => FunctionsHostEmulation.Map(endpoints, environment.Services, environment.Client, key));

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
