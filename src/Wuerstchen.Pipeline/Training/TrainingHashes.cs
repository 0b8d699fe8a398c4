using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Wuerstchen.Pipeline.Training;

/// <summary>The content hashes that name datasets, cache entries, recipes and checkpoints (sha256, lowercase hex).</summary>
public static class TrainingHashes
{
    private static readonly JsonSerializerOptions CanonicalJson = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase, WriteIndented = false };

    public static string Of(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    public static string Of(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The hash of a value's compact camelCase JSON.</summary>
    public static string OfJson<T>(T value) => Of(JsonSerializer.SerializeToUtf8Bytes(value, CanonicalJson));

    public static async Task<string> OfStreamAsync(Stream stream, CancellationToken cancellationToken) =>
        Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
}
