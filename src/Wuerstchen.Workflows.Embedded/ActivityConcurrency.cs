using System.Reflection;
using System.Runtime.ExceptionServices;
using DurableTask.Core;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.Hosting;

namespace Wuerstchen.Workflows.Embedded;

/// <summary>
/// The in-process engine (Microsoft.DurableTask.InProcessTestHost 0.2.3-preview.1) lets as many activities (and
/// orchestration work items) run at once as the machine has processors (<c>InMemoryOrchestrationService.MaxConcurrent…</c>)
/// and offers no setting for it. Its dispatchers read the limit from the orchestration service they hold; this puts a
/// proxy in front of that service that answers the limit asked for and forwards everything else. It fails loudly, naming what
/// it did not find, if a new version of the package changes that structure.
/// </summary>
internal static class ActivityConcurrency
{
    private const BindingFlags Instance = BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public;

    public static void Raise(DurableTaskTestHost host, int maxConcurrentActivities)
    {
        var sidecar = (IHost)Field(host, "sidecarHost");
        var serverType = typeof(DurableTaskTestHost).Assembly.GetType("Microsoft.DurableTask.Testing.Sidecar.Grpc.TaskHubGrpcServer")
                         ?? throw Missing("the type TaskHubGrpcServer");
        object server = sidecar.Services.GetService(serverType) ?? throw Missing("the TaskHubGrpcServer service");
        object dispatcherHost = Field(server, "dispatcherHost");
        // Orchestrations too: each schedules the next stage activity, and two at a time would trickle them in.
        foreach (string name in new[] { "activityDispatcher", "orchestrationDispatcher" })
        {
            object dispatcher = Field(dispatcherHost, name);
            var serviceField = dispatcher.GetType().GetField("service", Instance) ?? throw Missing($"the {name}'s service");
            var inner = (IOrchestrationService)serviceField.GetValue(dispatcher)!;
            var proxy = DispatchProxy.Create<IOrchestrationService, LimitProxy>();
            ((LimitProxy)(object)proxy).Configure(inner, maxConcurrentActivities);
            serviceField.SetValue(dispatcher, proxy);
            if ((int)dispatcher.GetType().GetProperty("MaxWorkItems", Instance)!.GetValue(dispatcher)! != maxConcurrentActivities)
                throw Missing($"a {name} limit read from its service");
        }
    }

    private static object Field(object owner, string name) =>
        owner.GetType().GetField(name, Instance)?.GetValue(owner) ?? throw Missing($"{owner.GetType().Name}.{name}");

    private static NotSupportedException Missing(string what) => new(
        $"The embedded Durable engine's activity limit cannot be raised: {what} was not found in Microsoft.DurableTask.InProcessTestHost " +
        $"{typeof(DurableTaskTestHost).Assembly.GetName().Version}. Set Wuerstchen:Batching:MaxConcurrentStageActivities to at most {Environment.ProcessorCount}.");

    /// <summary>Forwards every call to the service except the activity limit.</summary>
    public class LimitProxy : DispatchProxy
    {
        private IOrchestrationService? _inner;
        private int _limit;

        internal void Configure(IOrchestrationService inner, int limit)
        {
            _inner = inner;
            _limit = limit;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod!.Name is "get_" + nameof(IOrchestrationService.MaxConcurrentTaskActivityWorkItems)
                or "get_" + nameof(IOrchestrationService.MaxConcurrentTaskOrchestrationWorkItems))
                return _limit;
            try
            {
                return targetMethod.Invoke(_inner, args);
            }
            catch (TargetInvocationException e) when (e.InnerException is not null)
            {
                ExceptionDispatchInfo.Throw(e.InnerException);
                throw;
            }
        }
    }
}
