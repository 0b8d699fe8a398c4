using System.Reflection;
using System.Reflection.Emit;
using Microsoft.Azure.Functions.Worker;
using Microsoft.DurableTask;
using Microsoft.Extensions.DependencyInjection;
using Wuerstchen.Workflows;

namespace Wuerstchen.Functions.Tests;

/// <summary>
/// The orchestrations and activities are registered twice: as the Functions app's [Function] wrappers and in
/// <see cref="WorkflowRegistration"/> for the embedded engine (CLI, tests). Both must offer the same names with the same
/// input and output types, or a workflow that passes on one host breaks on the other.
/// </summary>
public sealed class RegistrationDriftTests
{
    private sealed record Entry(string Kind, string Name, Type Input, Type Output)
    {
        public override string ToString() => $"{Kind} {Name}({Input.Name}) → {Output.Name}";
    }

    [Fact]
    public void TheFunctionsWrappersAndTheEmbeddedRegistrationOfferTheSameWorkflows()
    {
        var functions = FunctionsWrappers();
        var embedded = EmbeddedRegistrations();

        Assert.True(functions.Count >= 12, $"found only {functions.Count} Durable functions in the app");
        Assert.Equal(functions.Select(e => e.ToString()).Order(StringComparer.Ordinal), embedded.Select(e => e.ToString()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void TheComparisonSeesAChangedInputType()
    {
        // The check reads types, not only names: an activity whose wrapper took another input would differ.
        var functions = FunctionsWrappers();
        var stageC = Assert.Single(functions, e => e.Name == Workflows.Generation.StageActivities.StageC);
        var changed = stageC with { Input = typeof(string) };
        Assert.NotEqual(stageC.ToString(), changed.ToString());
        Assert.Equal(typeof(Workflows.Generation.StageWork), stageC.Input);
        var orchestration = Assert.Single(functions, e => e.Name == Workflows.Generation.GenerateImageOrchestration.Name);
        Assert.Equal(typeof(Workflows.Generation.GenerationJob), orchestration.Input);
    }

    /// <summary>Every [Function] with an orchestration or activity trigger: input from the trigger parameter (an
    /// orchestrator's from its <c>context.GetInput&lt;T&gt;()</c> call), output from its <c>Task&lt;T&gt;</c>.</summary>
    private static List<Entry> FunctionsWrappers()
    {
        var entries = new List<Entry>();
        foreach (var method in typeof(Bulk.BulkFunctions).Assembly.GetTypes().SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)))
        {
            if (method.GetCustomAttribute<FunctionAttribute>() is not { } function)
                continue;
            var output = Unwrap(method.ReturnType);
            if (method.GetParameters().FirstOrDefault(p => p.GetCustomAttribute<OrchestrationTriggerAttribute>() is not null) is not null)
                entries.Add(new Entry("orchestration", function.Name, OrchestratorInput(method), output));
            else if (method.GetParameters().FirstOrDefault(p => p.GetCustomAttribute<ActivityTriggerAttribute>() is not null) is { } trigger)
                entries.Add(new Entry("activity", function.Name, trigger.ParameterType, output));
        }
        return entries;
    }

    private static List<Entry> EmbeddedRegistrations()
    {
        using var services = new ServiceCollection().BuildServiceProvider();
        var registry = new DurableTaskRegistry();
        registry.AddWuerstchenWorkflows(services);
        var entries = new List<Entry>();
        foreach (var (name, factory) in Factories<ITaskOrchestrator>(registry))
        {
            var orchestrator = factory(services);
            entries.Add(new Entry("orchestration", name.Name, orchestrator.InputType, orchestrator.OutputType));
        }
        foreach (var (name, factory) in Factories<ITaskActivity>(registry))
        {
            var activity = factory(services);
            entries.Add(new Entry("activity", name.Name, activity.InputType, activity.OutputType));
        }
        return entries;
    }

    /// <summary>The registry's table of <typeparamref name="T"/> factories (internal to the Durable Task SDK).</summary>
    private static IEnumerable<KeyValuePair<TaskName, Func<IServiceProvider, T>>> Factories<T>(DurableTaskRegistry registry)
    {
        var wanted = typeof(IEnumerable<KeyValuePair<TaskName, Func<IServiceProvider, T>>>);
        var member = typeof(DurableTaskRegistry).GetProperties(BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.Instance)
            .Select(p => p.GetValue(registry))
            .Concat(typeof(DurableTaskRegistry).GetFields(BindingFlags.NonPublic | BindingFlags.Instance).Select(f => f.GetValue(registry)))
            .FirstOrDefault(v => v is not null && wanted.IsInstanceOfType(v));
        Assert.True(member is not null, $"DurableTaskRegistry has no table of {typeof(T).Name} factories any more; update this test to the SDK");
        return (IEnumerable<KeyValuePair<TaskName, Func<IServiceProvider, T>>>)member;
    }

    private static Type Unwrap(Type type) =>
        type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Task<>) ? type.GetGenericArguments()[0] : type == typeof(Task) ? typeof(void) : type;

    /// <summary>The T of the <c>TaskOrchestrationContext.GetInput&lt;T&gt;()</c> call in <paramref name="method"/>'s IL.</summary>
    private static Type OrchestratorInput(MethodInfo method)
    {
        byte[] il = method.GetMethodBody()?.GetILAsByteArray() ?? [];
        for (int i = 0; i + 4 < il.Length; i++)
        {
            if (il[i] != OpCodes.Call.Value && il[i] != OpCodes.Callvirt.Value)
                continue;
            MethodBase? called;
            try
            {
                called = method.Module.ResolveMethod(BitConverter.ToInt32(il, i + 1), method.DeclaringType?.GetGenericArguments(), method.GetGenericArguments());
            }
            catch (ArgumentException)
            {
                continue;
            }
            if (called is MethodInfo { Name: nameof(TaskOrchestrationContext.GetInput), IsGenericMethod: true } getInput
                && typeof(TaskOrchestrationContext).IsAssignableFrom(getInput.DeclaringType))
                return getInput.GetGenericArguments()[0];
        }
        throw new InvalidOperationException($"{method.DeclaringType?.Name}.{method.Name} reads no input with context.GetInput<T>()");
    }
}
