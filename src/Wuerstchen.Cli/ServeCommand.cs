using System.ComponentModel;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;
using Wuerstchen.Api;
using Wuerstchen.Workflows.Health;

namespace Wuerstchen.Cli;

/// <summary>
/// <c>wuerstchen serve</c>: the HTTP API (and the web app) on Kestrel over the embedded engine and the local store (or
/// <c>--storage</c>), from the same route table and handlers as the Functions app. Stops cleanly on Ctrl+C or SIGTERM.
/// </summary>
public sealed class ServeCommand : AsyncCommand<ServeCommand.Settings>
{
    public sealed class Settings : EngineSettings
    {
        [CommandOption("--host <ADDRESS>")]
        [Description("The address to listen on: an IP address or localhost. Default 127.0.0.1 (this machine only); 0.0.0.0 for every interface.")]
        [DefaultValue("127.0.0.1")]
        public string Host { get; init; } = "127.0.0.1";

        [CommandOption("--port <PORT>")]
        [Description("The TCP port, 1 … 65535, or 0 for any free one (the URL printed says which). Default 7071.")]
        [DefaultValue(7071)]
        public int Port { get; init; } = 7071;

        [CommandOption("--api-key <KEY>")]
        [Description("Require this key on every call but health, the API description and the web app (header x-functions-key or ?code=, as the Functions app's keys). Also WUERSTCHEN_API_KEY.")]
        public string? ApiKey { get; init; }

        public IPAddress? Address => Host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(Host, out var address) ? address : null;

        public string? Key => ApiKey ?? (Environment.GetEnvironmentVariable("WUERSTCHEN_API_KEY") is { Length: > 0 } key ? key : null);

        public override ValidationResult Validate()
        {
            var result = base.Validate();
            if (!result.Successful)
                return result;
            if (Address is null)
                return ValidationResult.Error($"--host must be an IP address (such as 127.0.0.1 or 0.0.0.0) or localhost, not '{Host}'.");
            if (Port is < 0 or > 65535)
                return ValidationResult.Error($"--port must be 0 … 65535, not {Port}.");
            if (Key is { } key && (key.Length < 8 || !key.All(c => c is > ' ' and <= '~')))
                return ValidationResult.Error("--api-key (or WUERSTCHEN_API_KEY) must be at least 8 printable ASCII characters without spaces.");
            return ValidationResult.Success();
        }
    }

    public override async Task<int> ExecuteAsync(CommandContext context, Settings settings, CancellationToken cancellationToken)
    {
        await ModelAvailability.EnsureAsync(settings, cancellationToken);
        await using var engine = await LocalEngine.StartAsync(settings, extra: null, cancellationToken,
            configure: (services, configuration) => services.AddWuerstchenApi(configuration));
        var api = engine.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ApiOptions>>().Value;
        api.DefaultPriorModel = engine.PriorModel;
        api.DefaultDecoderModel = engine.DecoderModel;

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        if (settings.Verbose)
            builder.Logging.AddSimpleConsole(console => console.SingleLine = true);
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.WebHost.UseKestrel(kestrel =>
        {
            kestrel.Listen(settings.Address!, settings.Port);
            kestrel.Limits.MaxRequestBodySize = null; // the handlers enforce Wuerstchen:Api:MaxBodyBytes and answer 413 in their own words
        });
        builder.Services.AddWuerstchenApiEndpoints();
        await using var app = builder.Build();
        app.MapWuerstchenApi(engine.Services, engine.Client, settings.Key);

        // Warm the default models in the background, as a Functions replica does; /api/health/startup says when it is over.
        var preloader = engine.Services.GetRequiredService<ModelPreloader>();
        _ = preloader.RunAsync(cancellationToken);

        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e)
        {
            return Errors.Failed($"cannot listen on {settings.Host}:{settings.Port.ToString(CultureInfo.InvariantCulture)}: {e.Message}");
        }
        string url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        Console.WriteLine($"Serving the Würstchen API at {url}/ (web app {url}/app/, API reference {url}/api/docs, OpenAPI {url}/api/openapi.json)");
        if (settings.Key is not null)
            Console.WriteLine("Every call but health, the API description and the web app needs the API key (x-functions-key header or ?code=).");
        Console.WriteLine("Press Ctrl+C to stop.");

        using var stopped = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, app.Lifetime.ApplicationStopping);
        try
        {
            await Task.Delay(Timeout.Infinite, stopped.Token);
        }
        catch (OperationCanceledException)
        {
        }
        await app.StopAsync(CancellationToken.None);
        Console.WriteLine("Stopped.");
        return ExitCodes.Success;
    }
}
