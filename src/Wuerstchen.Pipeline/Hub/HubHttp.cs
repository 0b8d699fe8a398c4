using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>A repository revision as the Hub lists it: the commit it resolves to and every file path in it.</summary>
internal sealed record RepoListing(string Commit, IReadOnlyList<string> Files);

/// <summary>
/// One file's metadata from a HEAD on its resolve URL: the ETag (the SHA-256 for LFS files, the git blob id for others)
/// names its blob; LFS files are verified by that hash, others by <see cref="Size"/>.
/// </summary>
internal sealed record RemoteFile(string Path, string Etag, long Size, bool IsLfs, Uri Url);

/// <summary>
/// The Hub's HTTP surface: the model-info API for listing a revision
/// (<c>GET {endpoint}/api/models/{repo}/revision/{revision}</c>, which gives the commit <c>sha</c> and
/// <c>siblings[].rfilename</c>), HEAD on <c>{endpoint}/{repo}/resolve/{commit}/{path}</c> for a file's ETag and size, and
/// GET on the same URL following redirects to the storage that serves the bytes. Redirects are followed by hand so
/// that the token is only sent to the endpoint's own host.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    private const int MaxRedirects = 10;

    private readonly HubOptions _options;
    private readonly HttpClient _client;
    private readonly Uri _endpoint;

    public HubHttp(HubOptions options)
    {
        _options = options;
        _endpoint = new Uri(options.Endpoint.AbsoluteUri.TrimEnd('/') + "/");
        _client = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = options.ConnectTimeout,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("Wuerstchen.Pipeline", "1.0"));
    }

    public Uri Endpoint => _endpoint;

    private Uri ResolveUrl(string repoId, string commit, string path) =>
        new(_endpoint, $"{repoId}/resolve/{Uri.EscapeDataString(commit)}/{string.Join('/', path.Split('/').Select(Uri.EscapeDataString))}");

    public async Task<RepoListing> ListAsync(string repoId, string revision, CancellationToken cancellationToken)
    {
        var url = new Uri(_endpoint, $"api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}");
        using var timeout = TimeoutAfter(_options.MetadataTimeout, cancellationToken);
        try
        {
            using var response = await SendAsync(HttpMethod.Get, url, null, timeout.Token).ConfigureAwait(false);
            EnsureSuccess(response, url, $"listing {repoId} at '{revision}'");
            await using var body = await response.Content.ReadAsStreamAsync(timeout.Token).ConfigureAwait(false);
            using var document = await JsonDocument.ParseAsync(body, cancellationToken: timeout.Token).ConfigureAwait(false);
            return ParseListing(document.RootElement, repoId, revision);
        }
        catch (Exception e) when (IsTimeout(e, cancellationToken))
        {
            throw NoAnswer(url, $"listing {repoId} at '{revision}'", e);
        }
        catch (HttpRequestException e) when (e.StatusCode is null)
        {
            throw Unreachable(url, $"listing {repoId} at '{revision}'", e);
        }
        catch (JsonException e)
        {
            throw new HubRequestException($"The Hub's listing of {repoId} at '{revision}' ({url}) is not valid JSON: {e.Message}", HttpStatusCode.OK, e);
        }
    }

    public async Task<RemoteFile> GetMetadataAsync(string repoId, string commit, string path, CancellationToken cancellationToken)
    {
        var url = ResolveUrl(repoId, commit, path);
        string what = $"metadata of '{path}' in {repoId}";
        using var timeout = TimeoutAfter(_options.MetadataTimeout, cancellationToken);
        try
        {
            // Like huggingface_hub: follow only relative redirects (a renamed repository); an absolute one points at the
            // storage, and the headers that matter are on the redirect itself.
            var current = url;
            for (int hop = 0; ; hop++)
            {
                using var response = await SendAsync(HttpMethod.Head, current, null, timeout.Token).ConfigureAwait(false);
                if (IsRedirect(response.StatusCode) && response.Headers.Location is { IsAbsoluteUri: false } relative && hop < MaxRedirects)
                {
                    current = new Uri(current, relative);
                    continue;
                }
                if (!IsRedirect(response.StatusCode))
                    EnsureSuccess(response, current, what);
                return ParseMetadata(response, repoId, path, url);
            }
        }
        catch (Exception e) when (IsTimeout(e, cancellationToken))
        {
            throw NoAnswer(url, what, e);
        }
        catch (HttpRequestException e) when (e.StatusCode is null)
        {
            throw Unreachable(url, what, e);
        }
    }

    /// <summary>
    /// GETs <paramref name="url"/> from byte <paramref name="offset"/> on, following redirects; the caller owns the
    /// response, whose headers have arrived and whose body is unread.
    /// </summary>
    public async Task<HttpResponseMessage> GetAsync(Uri url, long offset, string what, CancellationToken cancellationToken)
    {
        var range = offset > 0 ? new RangeHeaderValue(offset, null) : null;
        using var timeout = TimeoutAfter(_options.MetadataTimeout, cancellationToken);
        try
        {
            var current = url;
            for (int hop = 0; ; hop++)
            {
                var response = await SendAsync(HttpMethod.Get, current, range, timeout.Token).ConfigureAwait(false);
                if (IsRedirect(response.StatusCode) && response.Headers.Location is { } location)
                {
                    response.Dispose();
                    if (hop == MaxRedirects)
                        throw new HubRequestException($"Downloading {what} ({url}) was redirected more than {MaxRedirects} times.", response.StatusCode);
                    current = new Uri(current, location);
                    continue;
                }
                try
                {
                    EnsureSuccess(response, current, what);
                }
                catch
                {
                    response.Dispose();
                    throw;
                }
                return response;
            }
        }
        catch (Exception e) when (IsTimeout(e, cancellationToken))
        {
            throw NoAnswer(url, what, e);
        }
        catch (HttpRequestException e) when (e.StatusCode is null)
        {
            throw Unreachable(url, what, e);
        }
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, RangeHeaderValue? range, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, url);
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
        request.Headers.Range = range;
        if (_options.Token is { } token && IsEndpointHost(url))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
    }

    private bool IsEndpointHost(Uri url) =>
        Uri.Compare(url, _endpoint, UriComponents.SchemeAndServer, UriFormat.Unescaped, StringComparison.OrdinalIgnoreCase) == 0;

    private static RepoListing ParseListing(JsonElement root, string repoId, string revision)
    {
        if (root.ValueKind != JsonValueKind.Object
            || !root.TryGetProperty("sha", out var sha) || sha.ValueKind != JsonValueKind.String || !HubRepoCache.IsCommitHash(sha.GetString()!)
            || !root.TryGetProperty("siblings", out var siblings) || siblings.ValueKind != JsonValueKind.Array)
            throw new HubRequestException($"The Hub's listing of {repoId} at '{revision}' lacks a commit 'sha' or the 'siblings' array.", HttpStatusCode.OK);
        var files = new List<string>();
        foreach (var sibling in siblings.EnumerateArray())
        {
            if (sibling.ValueKind != JsonValueKind.Object || !sibling.TryGetProperty("rfilename", out var name) || name.ValueKind != JsonValueKind.String)
                throw new HubRequestException($"The Hub's listing of {repoId} at '{revision}' has a sibling without 'rfilename'.", HttpStatusCode.OK);
            string path = name.GetString()!;
            if (!HubRepoCache.IsSafeRepoPath(path))
                throw new HubRequestException($"The Hub's listing of {repoId} at '{revision}' has the unsafe path '{path}'.", HttpStatusCode.OK);
            files.Add(path);
        }
        return new RepoListing(sha.GetString()!, files);
    }

    private static RemoteFile ParseMetadata(HttpResponseMessage response, string repoId, string path, Uri url)
    {
        string? linkedEtag = Header(response, "X-Linked-Etag");
        string? etag = NormalizeEtag(linkedEtag ?? Header(response, "ETag"));
        if (etag is null || !HubRepoCache.IsSafeEtag(etag))
            throw new HubRequestException($"The Hub sent no usable ETag for '{path}' in {repoId} ({url}); got '{etag}'.", response.StatusCode);
        long? size = long.TryParse(Header(response, "X-Linked-Size"), out long linked) ? linked
            : IsRedirect(response.StatusCode) ? null : response.Content.Headers.ContentLength;
        if (size is null)
            throw new HubRequestException($"The Hub sent no size for '{path}' in {repoId} ({url}).", response.StatusCode);
        bool isLfs = linkedEtag is not null && etag.Length == 64;
        return new RemoteFile(path, etag, size.Value, isLfs, url);
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary><c>W/"abc"</c> and <c>"abc"</c> both name the blob <c>abc</c>.</summary>
    private static string? NormalizeEtag(string? etag) =>
        etag is null ? null : (etag.StartsWith("W/", StringComparison.Ordinal) ? etag[2..] : etag).Trim('"');

    private static bool IsRedirect(HttpStatusCode status) =>
        status is HttpStatusCode.MovedPermanently or HttpStatusCode.Found or HttpStatusCode.SeeOther
            or HttpStatusCode.TemporaryRedirect or HttpStatusCode.PermanentRedirect;

    private static void EnsureSuccess(HttpResponseMessage response, Uri url, string what)
    {
        if (response.IsSuccessStatusCode)
            return;
        string? hubMessage = Header(response, "X-Error-Message");
        string hint = response.StatusCode switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden =>
                " The repository is private or gated, or the token is missing or invalid: set HF_TOKEN (or HubOptions.Token).",
            HttpStatusCode.NotFound => " Check the repository id, the revision and the path.",
            _ => "",
        };
        throw new HubRequestException(
            $"The Hub answered HTTP {(int)response.StatusCode} {response.ReasonPhrase} to {what} ({url}).{(hubMessage is null ? "" : $" {hubMessage}.")}{hint}",
            response.StatusCode);
    }

    private static CancellationTokenSource TimeoutAfter(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        source.CancelAfter(timeout);
        return source;
    }

    private static bool IsTimeout(Exception e, CancellationToken cancellationToken) =>
        e is OperationCanceledException && !cancellationToken.IsCancellationRequested;

    private HubRequestException NoAnswer(Uri url, string what, Exception inner) =>
        new($"The Hub did not answer {what} ({url}) within {_options.MetadataTimeout.TotalSeconds:0.#} s.", null, inner);

    private static HubRequestException Unreachable(Uri url, string what, HttpRequestException inner) =>
        new($"The Hub could not be reached for {what} ({url}): {inner.Message}", null, inner);

    public void Dispose() => _client.Dispose();
}
