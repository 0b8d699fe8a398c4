using System.Net;
using System.Net.Sockets;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Client;
using Wuerstchen.Workflows.Embedded;

namespace Wuerstchen.Functions.Tests;

public sealed class EmbeddedDurableEngineTests
{
    [Fact]
    public async Task APortAnotherSocketHoldsIsRetriedOnAFreshOneAndTheEngineRuns()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        int taken = ((IPEndPoint)holder.LocalEndpoint).Port;
        var offered = new List<int>();

        await using var engine = await EmbeddedDurableEngine.StartAsync(Register, loggerFactory: null, () =>
        {
            int port = offered.Count == 0 ? taken : EmbeddedDurableEngine.FreeLoopbackPort();
            offered.Add(port);
            return port;
        }, TestContext.Current.CancellationToken);

        Assert.Equal(2, offered.Count);
        Assert.Equal(taken, offered[0]);
        string id = await engine.Client.ScheduleNewOrchestrationInstanceAsync("Echo", "hello", TestContext.Current.CancellationToken);
        var done = await engine.Client.WaitForInstanceCompletionAsync(id, getInputsAndOutputs: true, TestContext.Current.CancellationToken);
        Assert.Equal(OrchestrationRuntimeStatus.Completed, done.RuntimeStatus);
        Assert.Equal("hello", done.ReadOutputAs<string>());
    }

    [Fact]
    public async Task WhenEveryOfferedPortIsTakenTheBindFailureSurfacesAfterTheLastAttempt()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        int taken = ((IPEndPoint)holder.LocalEndpoint).Port;
        int attempts = 0;

        var error = await Assert.ThrowsAsync<IOException>(() => EmbeddedDurableEngine.StartAsync(Register, loggerFactory: null, () =>
        {
            attempts++;
            return taken;
        }, TestContext.Current.CancellationToken));

        Assert.Equal(EmbeddedDurableEngine.MaxStartAttempts, attempts);
        Assert.Contains(taken.ToString(System.Globalization.CultureInfo.InvariantCulture), error.Message);
    }

    private static void Register(DurableTaskRegistry registry) =>
        registry.AddOrchestratorFunc<string, string>("Echo", (_, input) => input);
}
