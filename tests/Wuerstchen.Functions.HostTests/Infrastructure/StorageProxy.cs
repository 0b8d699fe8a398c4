using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>
/// A TCP relay in front of Azurite's blob endpoint, which the app's blob store (<c>Wuerstchen:Storage</c>) reaches it
/// through. A test can take the storage "down" (every connection is dropped, new ones are closed at once: what the app
/// sees of a storage outage) and bring it back, or slow every exchange down. The host's own storage
/// (<c>AzureWebJobsStorage</c>: the Durable task hub, the bulk queue) does not go through it.
/// </summary>
public sealed class StorageProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<TcpClient, TcpClient> _open = new();
    private readonly Task _accepting;
    private volatile bool _down;
    private int _delayMilliseconds;

    public StorageProxy(int targetPort)
    {
        _target = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>How many connections it refused while down: evidence that the app tried while storage was away.</summary>
    public int Refused => _refused;
    private int _refused;

    public void Down()
    {
        _down = true;
        foreach (var (inbound, outbound) in _open)
        {
            inbound.Dispose();
            outbound.Dispose();
        }
    }

    public void Up() => _down = false;

    /// <summary>A delay before each chunk is passed on, in both directions.</summary>
    public TimeSpan Delay
    {
        get => TimeSpan.FromMilliseconds(_delayMilliseconds);
        set => Interlocked.Exchange(ref _delayMilliseconds, (int)value.TotalMilliseconds);
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            if (_down)
            {
                Interlocked.Increment(ref _refused);
                inbound.Dispose();
                continue;
            }
            _ = RelayAsync(inbound);
        }
    }

    private async Task RelayAsync(TcpClient inbound)
    {
        var outbound = new TcpClient();
        try
        {
            await outbound.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
            _open[inbound] = outbound;
            await Task.WhenAny(PumpAsync(inbound.GetStream(), outbound.GetStream()), PumpAsync(outbound.GetStream(), inbound.GetStream()));
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
        finally
        {
            _open.TryRemove(inbound, out _);
            inbound.Dispose();
            outbound.Dispose();
        }
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[81920];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, _stop.Token)) > 0)
            {
                if (_delayMilliseconds > 0)
                    await Task.Delay(_delayMilliseconds, _stop.Token);
                await to.WriteAsync(buffer.AsMemory(0, read), _stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        Down();
        await _accepting;
        _stop.Dispose();
    }
}
