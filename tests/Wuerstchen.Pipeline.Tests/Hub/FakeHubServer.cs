using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Wuerstchen.Pipeline.Tests.Hub;

/// <summary>One request the server saw; <paramref name="FilePath"/> is the repository file it concerned, if any.</summary>
internal sealed record HubRequest(string Method, string Host, string Path, string? FilePath, string? Range, string? Authorization)
{
    /// <summary>A GET that transfers file bytes: from the storage host for LFS files, from the resolve URL for others.</summary>
    public bool IsDownload => Method == "GET" && FilePath is not null && (Path.StartsWith("/lfs/", StringComparison.Ordinal) || !FakeHubServer.IsLfs(FilePath));
}

/// <summary>
/// A local stand-in for the Hugging Face Hub on 127.0.0.1: the model-info API, HEAD/GET on <c>/{repo}/resolve/{rev}/{path}</c>
/// with the Hub's headers (ETag, X-Repo-Commit; for LFS files, <c>*.safetensors</c> here, X-Linked-Etag = SHA-256 and
/// X-Linked-Size plus a redirect), and the redirect target <c>http://localhost:{port}/lfs/{sha256}</c> standing for the
/// storage host, with Range support. A repository may have several commits, each with its revisions. Faults can be injected per file. It stops when disposed, or after five minutes.
/// </summary>
internal sealed class FakeHubServer : IDisposable
{
    private readonly HttpListener _listener;
    private readonly CancellationTokenSource _stop = new(TimeSpan.FromMinutes(5));
    private readonly ConcurrentDictionary<string, ImmutableList<Repo>> _repos = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (string Path, byte[] Bytes)> _lfs = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Fault> _faults = new(StringComparer.Ordinal);
    private readonly Task _loop;

    private sealed record Repo(string Commit, IReadOnlyDictionary<string, byte[]> Files, IReadOnlySet<string> Revisions);

    private enum Fault { DropConnection, CorruptBody, TruncateBody }

    public FakeHubServer()
    {
        for (int attempt = 0; ; attempt++)
        {
            Port = FreePort();
            _listener = new HttpListener();
            _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
            _listener.Prefixes.Add($"http://localhost:{Port}/");
            try
            {
                _listener.Start();
                break;
            }
            catch (HttpListenerException) when (attempt < 5)
            {
                _listener.Close();
            }
        }
        _loop = Task.Run(ServeAsync);
    }

    public int Port { get; }

    public Uri Endpoint => new($"http://127.0.0.1:{Port}");

    public ConcurrentQueue<HubRequest> Requests { get; } = new();

    /// <summary>When set, the API and resolve URLs answer 401 unless this Bearer token comes along.</summary>
    public string? RequiredToken { get; set; }

    /// <summary>Bytes a drop-connection fault sends before closing the connection.</summary>
    public long DropAfterBytes { get; set; } = 100_000;

    /// <summary>A pause between 64 KiB chunks of every body, to make downloads overlap.</summary>
    public TimeSpan ChunkDelay { get; set; }

    public void AddRepo(string repoId, string commit, IReadOnlyDictionary<string, byte[]> files, params string[] revisions)
    {
        foreach (var (path, bytes) in files)
        {
            if (IsLfs(path))
                _lfs[Sha256(bytes)] = (path, bytes);
        }
        var repo = new Repo(commit, files, new HashSet<string>(revisions.Append(commit), StringComparer.Ordinal));
        _repos.AddOrUpdate(repoId, [repo], (_, commits) => commits.Insert(0, repo));
    }

    /// <summary>The commit of <paramref name="repoId"/> that <paramref name="revision"/> names; the latest added wins.</summary>
    private bool TryFind(string repoId, string revision, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Repo? repo)
    {
        repo = _repos.TryGetValue(repoId, out var commits) ? commits.FirstOrDefault(c => c.Revisions.Contains(revision)) : null;
        return repo is not null;
    }

    /// <summary>The next GET of <paramref name="path"/>'s bytes sends <see cref="DropAfterBytes"/> bytes, then closes the connection.</summary>
    public void DropConnectionOnce(string path) => _faults[path] = Fault.DropConnection;

    /// <summary>Every GET of <paramref name="path"/>'s bytes has one byte flipped.</summary>
    public void CorruptBody(string path) => _faults[path] = Fault.CorruptBody;

    /// <summary>Every GET of <paramref name="path"/>'s bytes is sent chunked and 100 bytes short.</summary>
    public void TruncateBody(string path) => _faults[path] = Fault.TruncateBody;

    public IEnumerable<HubRequest> Downloads => Requests.Where(r => r.IsDownload);

    public static bool IsLfs(string path) => path.EndsWith(".safetensors", StringComparison.Ordinal);

    public static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The git blob id, which the Hub sends as the ETag of a file kept in git.</summary>
    public static string GitBlobId(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    private static int FreePort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    private async Task ServeAsync()
    {
        using var registration = _stop.Token.Register(() => _listener.Stop());
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening)
            {
                return;
            }
            _ = Task.Run(() => HandleAsync(context));
        }
    }

    private async Task HandleAsync(HttpListenerContext context)
    {
        var request = context.Request;
        var response = context.Response;
        string path = Uri.UnescapeDataString(request.Url!.AbsolutePath);
        Requests.Enqueue(new HubRequest(request.HttpMethod, request.Url.Host, path, FilePathOf(path), request.Headers["Range"], request.Headers["Authorization"]));
        try
        {
            if (path.StartsWith("/lfs/", StringComparison.Ordinal))
            {
                await ServeLfsAsync(context, path["/lfs/".Length..]);
                return;
            }
            if (RequiredToken is { } token && request.Headers["Authorization"] != $"Bearer {token}")
            {
                response.StatusCode = 401;
                response.AddHeader("X-Error-Message", "Invalid credentials in Authorization header");
                response.Close();
                return;
            }
            if (path.StartsWith("/api/models/", StringComparison.Ordinal))
                await ServeListingAsync(response, path["/api/models/".Length..]);
            else
                await ServeResolveAsync(context, path);
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
        catch (HttpListenerException)
        {
            // The client went away.
        }
    }

    private async Task ServeListingAsync(HttpListenerResponse response, string rest)
    {
        // {owner}/{name}/revision/{revision}
        var parts = rest.Split('/', 4);
        if (parts.Length != 4 || parts[2] != "revision" || !TryFind($"{parts[0]}/{parts[1]}", parts[3], out var repo))
        {
            NotFound(response);
            return;
        }
        var body = JsonSerializer.SerializeToUtf8Bytes(new
        {
            id = $"{parts[0]}/{parts[1]}",
            sha = repo.Commit,
            siblings = repo.Files.Keys.Order(StringComparer.Ordinal).Select(f => new { rfilename = f }),
        });
        response.ContentType = "application/json";
        response.ContentLength64 = body.Length;
        await response.OutputStream.WriteAsync(body);
        response.Close();
    }

    private async Task ServeResolveAsync(HttpListenerContext context, string path)
    {
        // /{owner}/{name}/resolve/{revision}/{file path}
        var parts = path.TrimStart('/').Split('/', 5);
        var response = context.Response;
        if (parts.Length != 5 || parts[2] != "resolve" || !TryFind($"{parts[0]}/{parts[1]}", parts[3], out var repo)
            || !repo.Files.TryGetValue(parts[4], out var bytes))
        {
            NotFound(response);
            return;
        }
        response.AddHeader("X-Repo-Commit", repo.Commit);
        if (IsLfs(parts[4]))
        {
            string sha = Sha256(bytes);
            response.StatusCode = 302;
            response.AddHeader("Location", $"http://localhost:{Port}/lfs/{sha}");
            response.AddHeader("X-Linked-Etag", $"\"{sha}\"");
            response.AddHeader("X-Linked-Size", bytes.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
            response.AddHeader("ETag", $"W/\"{GitBlobId(Encoding.ASCII.GetBytes($"oid sha256:{sha}"))}\"");
            response.Close();
            return;
        }
        response.AddHeader("ETag", $"\"{GitBlobId(bytes)}\"");
        await ServeBytesAsync(context, bytes, parts[4]);
    }

    private async Task ServeLfsAsync(HttpListenerContext context, string sha)
    {
        if (!_lfs.TryGetValue(sha, out var file))
        {
            NotFound(context.Response);
            return;
        }
        await ServeBytesAsync(context, file.Bytes, file.Path);
    }

    private async Task ServeBytesAsync(HttpListenerContext context, byte[] bytes, string path)
    {
        var response = context.Response;
        long start = 0;
        if (context.Request.Headers["Range"] is { } range && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            start = long.Parse(range["bytes=".Length..^1], System.Globalization.CultureInfo.InvariantCulture);
            response.StatusCode = 206;
            response.AddHeader("Content-Range", $"bytes {start}-{bytes.Length - 1}/{bytes.Length}");
        }
        var body = bytes.AsMemory((int)start);
        if (context.Request.HttpMethod == "HEAD")
        {
            response.ContentLength64 = body.Length;
            response.Close();
            return;
        }

        Fault? fault = _faults.TryGetValue(path, out var f) ? f : null;
        if (fault == Fault.DropConnection && _faults.TryRemove(path, out _))
        {
            response.ContentLength64 = body.Length;
            await response.OutputStream.WriteAsync(body[..(int)DropAfterBytes]);
            await response.OutputStream.FlushAsync();
            await Task.Delay(200);
            response.Abort();
            return;
        }
        if (fault == Fault.CorruptBody)
        {
            var corrupted = body.ToArray();
            corrupted[corrupted.Length / 2] ^= 0xFF;
            body = corrupted;
        }
        if (fault == Fault.TruncateBody)
        {
            response.SendChunked = true;
            body = body[..^100];
        }
        else
        {
            response.ContentLength64 = body.Length;
        }
        for (int offset = 0; offset < body.Length; offset += 1 << 16)
        {
            await response.OutputStream.WriteAsync(body[offset..Math.Min(body.Length, offset + (1 << 16))]);
            if (ChunkDelay > TimeSpan.Zero)
                await Task.Delay(ChunkDelay);
        }
        response.Close();
    }

    private string? FilePathOf(string path)
    {
        if (path.StartsWith("/lfs/", StringComparison.Ordinal))
            return _lfs.TryGetValue(path["/lfs/".Length..], out var file) ? file.Path : null;
        var parts = path.TrimStart('/').Split('/', 5);
        return parts.Length == 5 && parts[2] == "resolve" ? parts[4] : null;
    }

    private static void NotFound(HttpListenerResponse response)
    {
        response.StatusCode = 404;
        response.AddHeader("X-Error-Message", "Repository not found");
        response.Close();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _stop.Dispose();
    }
}
