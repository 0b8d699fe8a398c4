using System.Buffers.Text;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Wuerstchen.Models.Tests;

namespace Wuerstchen.Pipeline.Tests.Storage;

/// <summary>
/// A private Azurite blob service that takes Azure AD tokens (<c>--oauth basic</c>, HTTPS with a self-signed
/// certificate made here), reached through a credential that hands out unsigned tokens, as a managed identity would
/// hand out signed ones. Started from tools/azurite on a free port and stopped afterwards.
/// </summary>
public sealed class OAuthAzuriteFixture : IAsyncLifetime
{
    private readonly TempDirectory _temp = new();
    private readonly StringBuilder _log = new();
    private Process? _azurite;
    private X509Certificate2? _certificate;
    private string? _unavailable;

    public BlobServiceClient Service { get; private set; } = null!;

    /// <summary>An HTTP handler that trusts this fixture's certificate and no other self-signed one.</summary>
    public HttpMessageHandler TrustingHandler() => new HttpClientHandler
    {
        ServerCertificateCustomValidationCallback = (_, certificate, _, errors) =>
            errors == System.Net.Security.SslPolicyErrors.None || certificate?.Thumbprint == _certificate?.Thumbprint,
    };

    public void RequireAzurite() => AzuriteFixture.SkipOrFail(_unavailable);

    public async ValueTask InitializeAsync()
    {
        var azuriteBlob = FindAzuriteBlob();
        if (azuriteBlob is null)
        {
            _unavailable = "Azurite is not installed in tools/azurite; scripts/azurite.sh (sourced by scripts/test.sh) installs it.";
            return;
        }

        var (certificate, key) = WriteCertificate();
        var port = FreePort();
        var start = new ProcessStartInfo(azuriteBlob)
        {
            ArgumentList =
            {
                "--blobHost", "127.0.0.1", "--blobPort", $"{port}", "--inMemoryPersistence", "--skipApiVersionCheck",
                "--disableTelemetry", "--oauth", "basic", "--cert", certificate, "--key", key, "--silent",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        _azurite = Process.Start(start)!;
        _azurite.OutputDataReceived += (_, e) => Log(e.Data);
        _azurite.ErrorDataReceived += (_, e) => Log(e.Data);
        _azurite.BeginOutputReadLine();
        _azurite.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await ListeningAsync(port))
        {
            if (_azurite.HasExited || DateTime.UtcNow > deadline)
            {
                _unavailable = $"Azurite with --oauth basic did not start on port {port}: {_log}";
                return;
            }

            await Task.Delay(100);
        }

        var options = new BlobClientOptions { Transport = new HttpClientTransport(TrustingHandler()) };
        Service = new BlobServiceClient(new Uri($"https://127.0.0.1:{port}/devstoreaccount1"), new UnsignedTokenCredential(), options);
    }

    public async ValueTask DisposeAsync()
    {
        if (_azurite is not null)
        {
            _azurite.Kill(entireProcessTree: true);
            await _azurite.WaitForExitAsync();
            _azurite.Dispose();
        }

        _certificate?.Dispose();
        _temp.Dispose();
    }

    private void Log(string? line)
    {
        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    private (string Certificate, string Key) WriteCertificate()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=127.0.0.1", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        _certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));

        var certificate = _temp.File("cert.pem");
        var key = _temp.File("key.pem");
        File.WriteAllText(certificate, _certificate.ExportCertificatePem());
        File.WriteAllText(key, rsa.ExportPkcs8PrivateKeyPem());
        return (certificate, key);
    }

    private static string? FindAzuriteBlob()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "tools", "azurite", "node_modules", ".bin", "azurite-blob");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<bool> ListeningAsync(int port)
    {
        using var client = new TcpClient();
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Tokens with the claims Azurite's basic OAuth checks (issuer, audience, times) and that its delegation keys are made for (object and tenant ID), unsigned.</summary>
    private sealed class UnsignedTokenCredential : TokenCredential
    {
        private const string Tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";

        public override AccessToken GetToken(TokenRequestContext requestContext, CancellationToken cancellationToken)
        {
            var now = DateTimeOffset.UtcNow;
            var claims = new Dictionary<string, object>
            {
                ["aud"] = "https://storage.azure.com",
                ["iss"] = $"https://sts.windows.net/{Tenant}/",
                ["iat"] = now.AddMinutes(-5).ToUnixTimeSeconds(),
                ["nbf"] = now.AddMinutes(-5).ToUnixTimeSeconds(),
                ["exp"] = now.AddHours(1).ToUnixTimeSeconds(),
                ["oid"] = "5c3a3f4e-9d1b-4a8e-8f7c-2b6d1e0a9c11",
                ["tid"] = Tenant,
            };
            var token = $"{Part(new Dictionary<string, object> { ["alg"] = "none", ["typ"] = "JWT" })}.{Part(claims)}.unsigned";
            return new AccessToken(token, now.AddHours(1));
        }

        public override ValueTask<AccessToken> GetTokenAsync(TokenRequestContext requestContext, CancellationToken cancellationToken) =>
            ValueTask.FromResult(GetToken(requestContext, cancellationToken));

        private static string Part(Dictionary<string, object> json) => Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(json));
    }
}
