using System.Reflection;
using System.Runtime.Loader;
using Wuerstchen.Functions.HostTests.Infrastructure;

namespace Wuerstchen.Functions.HostTests;

/// <summary>The app starts under the real host with the settings local.settings.json.example documents, and the host serves every function the code declares.</summary>
[Collection(HostCollection.Name)]
public sealed class StartupTests(HostFixture host)
{
    private static readonly Dictionary<string, string> TriggerBindings = new(StringComparer.Ordinal)
    {
        ["HttpTriggerAttribute"] = "httpTrigger",
        ["QueueTriggerAttribute"] = "queueTrigger",
        ["TimerTriggerAttribute"] = "timerTrigger",
        ["OrchestrationTriggerAttribute"] = "orchestrationTrigger",
        ["ActivityTriggerAttribute"] = "activityTrigger",
        ["EntityTriggerAttribute"] = "entityTrigger",
        ["BlobTriggerAttribute"] = "blobTrigger",
    };

    [Fact]
    public async Task TheAppStartsWithTheExampleSettingsChangingOnlyWhatNamesThisMachine()
    {
        await host.EnsureRunningAsync();
        var example = AppSettings.Example();
        // The example's scheduled dataset is replaced by the timer test's two (TimerDatasets).
        var changed = example.Where(e => host.Settings[e.Key] != e.Value && !e.Key.StartsWith(TimerDatasets.SettingPrefix, StringComparison.Ordinal))
            .Select(e => e.Key).Order().ToArray();
        Assert.Equal(AppSettings.MachineSpecific.Order(), changed);

        var status = (await host.Host.AdminAsync(HttpMethod.Get, "admin/host/status"))!;
        Assert.Equal("Running", status.Text("state"));
        Assert.True(status["errors"] is null || status["errors"]!.AsArray().Count == 0, status.ToJsonString());
        Assert.DoesNotContain(host.Host.Logs[0].Entries, e => e.Message.Contains("A host error has occurred", StringComparison.Ordinal)
                                                            || e.Message.StartsWith("Language Worker Process exited", StringComparison.Ordinal));
        Timings.Record("first host start (launch → readiness probe answering 200)", host.FirstStart);
    }

    [Fact]
    public async Task TheFunctionsTheHostListsAreTheFunctionsTheCodeDeclares()
    {
        await host.EnsureRunningAsync();
        var listed = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var function in (await host.Host.AdminAsync(HttpMethod.Get, "admin/functions"))!.AsArray())
        {
            Assert.False(function!["isDisabled"]!.GetValue<bool>(), $"{function.Text("name")} is disabled");
            string trigger = function["config"]!["bindings"]!.AsArray().Select(b => b.Text("type")).Single(t => t.EndsWith("Trigger", StringComparison.Ordinal));
            listed.Add($"{function.Text("name")} ({trigger})");
        }

        Assert.Equal(DeclaredFunctions(), listed);
    }

    /// <summary>
    /// "{name} ({trigger})" of every method of the app's assembly with a [Function] attribute, read from the build output
    /// in a load context of its own (attributes as data: nothing of the app runs here).
    /// </summary>
    private static SortedSet<string> DeclaredFunctions()
    {
        string path = Path.Combine(Repository.AppOutput, "Wuerstchen.Functions.dll");
        var context = new AppLoadContext(path);
        try
        {
            var declared = new SortedSet<string>(StringComparer.Ordinal);
            var assembly = context.LoadFromAssemblyPath(path);
            Type?[] types;
            try
            {
                types = assembly.GetTypes();
            }
            catch (ReflectionTypeLoadException e)
            {
                types = e.Types;
            }
            foreach (var method in types.OfType<Type>().SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)))
            {
                var function = method.GetCustomAttributesData().FirstOrDefault(a => a.AttributeType.FullName == "Microsoft.Azure.Functions.Worker.FunctionAttribute");
                if (function is null)
                    continue;
                var triggers = method.GetParameters().SelectMany(p => p.GetCustomAttributesData())
                    .Select(a => TriggerBindings.GetValueOrDefault(a.AttributeType.Name)).OfType<string>().ToArray();
                declared.Add($"{function.ConstructorArguments[0].Value} ({Assert.Single(triggers)})");
            }
            return declared;
        }
        finally
        {
            context.Unload();
        }
    }

    private sealed class AppLoadContext(string mainAssembly) : AssemblyLoadContext(isCollectible: true)
    {
        private readonly AssemblyDependencyResolver _resolver = new(mainAssembly);

        protected override Assembly? Load(AssemblyName name) =>
            _resolver.ResolveAssemblyToPath(name) is { } path ? LoadFromAssemblyPath(path) : null;
    }
}
