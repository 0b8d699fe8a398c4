using System.Text;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>
/// Options for <see cref="HuggingFaceHubClient"/>. <see cref="FromEnvironment()"/> reads the variables the Python
/// <c>huggingface_hub</c> library reads, so both share one cache: <c>HF_ENDPOINT</c>, <c>HF_HOME</c> (or
/// <c>HF_HUB_CACHE</c>, <c>XDG_CACHE_HOME</c>), <c>HF_TOKEN</c> and <c>HF_HUB_OFFLINE</c>.
/// </summary>
public sealed record HubOptions
{
    public static readonly Uri DefaultEndpoint = new("https://huggingface.co");

    public Uri Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>The hub cache folder (<c>{HF_HOME}/hub</c>) holding one <c>models--{owner}--{name}</c> folder per repository.</summary>
    public string CacheDirectory { get; init; } = Path.Combine(DefaultHfHome(null), "hub");

    /// <summary>Sent as <c>Authorization: Bearer</c> to the endpoint only (never to the storage it redirects to), and never logged.</summary>
    public string? Token { get; init; }

    /// <summary>Resolve from the cache only; fail with the list of missing files instead of asking the endpoint.</summary>
    public bool Offline { get; init; }

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long the listing and each file's metadata request (and a download's response headers) may take.</summary>
    public TimeSpan MetadataTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long a download may go without receiving a byte before it counts as interrupted.</summary>
    public TimeSpan ReadTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How often an interrupted download is resumed within one call before the call fails (the partial file stays).</summary>
    public int MaxRetries { get; init; } = 3;

    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    public int MaxParallelDownloads { get; init; } = 4;

    public static HubOptions FromEnvironment() => FromEnvironment(Environment.GetEnvironmentVariable);

    internal static HubOptions FromEnvironment(Func<string, string?> variable)
    {
        string? endpoint = NonEmpty(variable("HF_ENDPOINT"));
        string hfHome = NonEmpty(variable("HF_HOME")) ?? DefaultHfHome(NonEmpty(variable("XDG_CACHE_HOME")));
        return new HubOptions
        {
            Endpoint = endpoint is null ? DefaultEndpoint : new Uri(endpoint, UriKind.Absolute),
            CacheDirectory = NonEmpty(variable("HF_HUB_CACHE")) ?? Path.Combine(hfHome, "hub"),
            Token = NonEmpty(variable("HF_TOKEN")),
            Offline = NonEmpty(variable("HF_HUB_OFFLINE"))?.ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE",
        };
    }

    private static string DefaultHfHome(string? xdgCacheHome) =>
        Path.Combine(xdgCacheHome ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    // Records print every property; the token must not reach a log through ToString.
    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append($"Endpoint = {Endpoint}, CacheDirectory = {CacheDirectory}, Token = {(Token is null ? "(none)" : "(set)")}, Offline = {Offline}, ");
        builder.Append($"ConnectTimeout = {ConnectTimeout}, MetadataTimeout = {MetadataTimeout}, ReadTimeout = {ReadTimeout}, ");
        builder.Append($"MaxRetries = {MaxRetries}, RetryDelay = {RetryDelay}, MaxParallelDownloads = {MaxParallelDownloads}");
        return true;
    }
}
