using System.Diagnostics;
using System.Net.Sockets;

namespace Wuerstchen.Functions.HostTests.Infrastructure;

/// <summary>
/// An Azurite of this test run on free ports (blob, queue, table; in memory), so that the layer needs no emulator on the
/// default ports and shares nothing with the other test projects running beside it.
/// </summary>
public sealed class Azurite : IAsyncDisposable
{
    public const string AccountName = "devstoreaccount1";

    // Azurite's well-known development key (the one UseDevelopmentStorage=true stands for); not a secret.
    public const string AccountKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    private readonly Process _process;

    private Azurite(Process process, int blob, int queue, int table)
    {
        _process = process;
        BlobPort = blob;
        QueuePort = queue;
        TablePort = table;
    }

    public int BlobPort { get; }
    public int QueuePort { get; }
    public int TablePort { get; }

    /// <summary>The account with all three services, as <c>AzureWebJobsStorage</c> takes it.</summary>
    public string ConnectionString => ConnectionStringWithBlobPort(BlobPort);

    /// <summary>The same account with the blob endpoint on another port (a proxy in front of this Azurite).</summary>
    public string ConnectionStringWithBlobPort(int blobPort) =>
        $"DefaultEndpointsProtocol=http;AccountName={AccountName};AccountKey={AccountKey};" +
        $"BlobEndpoint=http://127.0.0.1:{blobPort}/{AccountName};QueueEndpoint=http://127.0.0.1:{QueuePort}/{AccountName};" +
        $"TableEndpoint=http://127.0.0.1:{TablePort}/{AccountName};";

    public static async Task<Azurite> StartAsync(CancellationToken cancellationToken)
    {
        string azurite = await Repository.AzuriteAsync(cancellationToken);
        int blob = Repository.FreePort(), queue = Repository.FreePort(), table = Repository.FreePort();
        var start = new ProcessStartInfo(azurite) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string argument in new[]
                 {
                     "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--loose",
                     "--blobHost", "127.0.0.1", "--blobPort", $"{blob}", "--queueHost", "127.0.0.1", "--queuePort", $"{queue}",
                     "--tableHost", "127.0.0.1", "--tablePort", $"{table}", "--silent",
                 })
            start.ArgumentList.Add(argument);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var azuriteProcess = new Azurite(process, blob, queue, table);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        foreach (int port in new[] { blob, queue, table })
        {
            while (!Listening(port))
            {
                if (process.HasExited || DateTime.UtcNow > deadline)
                {
                    await azuriteProcess.DisposeAsync();
                    throw new InvalidOperationException($"Azurite ({azurite}) did not start listening on port {port}.");
                }
                await Task.Delay(100, cancellationToken);
            }
        }
        return azuriteProcess;
    }

    private static bool Listening(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
