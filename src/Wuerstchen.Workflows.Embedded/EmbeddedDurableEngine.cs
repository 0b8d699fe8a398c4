using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.DurableTask;
using Microsoft.DurableTask.Testing;
using Microsoft.Extensions.Logging;

namespace Wuerstchen.Workflows.Embedded;

/// <summary>
/// Starts the in-memory Durable Task engine on a loopback port the system reports free. The engine's own default draws a
/// random port in 30000–40000, which overlaps Linux's ephemeral range, so it can land on a port another connection
/// holds; a port taken between the probe and the bind is retried on a fresh one.
/// </summary>
public static class EmbeddedDurableEngine
{
    public const int MaxStartAttempts = 5;

    public static Task<DurableTaskTestHost> StartAsync(Action<DurableTaskRegistry> register, ILoggerFactory? loggerFactory = null,
        CancellationToken cancellationToken = default) =>
        StartAsync(register, loggerFactory, FreeLoopbackPort, cancellationToken);

    /// <summary>
    /// Starts the engine with room for <paramref name="maxConcurrentActivities"/> activities at once: the embedded
    /// engine's counterpart of host.json's <c>maxConcurrentActivityFunctions</c>. Its own limit is the processor count,
    /// which on a small machine would keep concurrent stage activities from ever meeting in a batch.
    /// </summary>
    public static async Task<DurableTaskTestHost> StartAsync(Action<DurableTaskRegistry> register, ILoggerFactory? loggerFactory, int maxConcurrentActivities,
        CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrentActivities, 1);
        var host = await StartAsync(register, loggerFactory, FreeLoopbackPort, cancellationToken).ConfigureAwait(false);
        if (maxConcurrentActivities > Environment.ProcessorCount)
        {
            try
            {
                ActivityConcurrency.Raise(host, maxConcurrentActivities);
            }
            catch
            {
                await host.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
        return host;
    }

    internal static async Task<DurableTaskTestHost> StartAsync(Action<DurableTaskRegistry> register, ILoggerFactory? loggerFactory,
        Func<int> nextPort, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(register);
        for (int attempt = 1; ; attempt++)
        {
            var options = new DurableTaskTestHostOptions { Port = nextPort(), LoggerFactory = loggerFactory };
            try
            {
                return await DurableTaskTestHost.StartAsync(register, options, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException e) when (attempt < MaxStartAttempts && IsAddressInUse(e))
            {
            }
        }
    }

    public static int FreeLoopbackPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static bool IsAddressInUse(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is AddressInUseException || inner is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse })
                return true;
        }
        return false;
    }
}
