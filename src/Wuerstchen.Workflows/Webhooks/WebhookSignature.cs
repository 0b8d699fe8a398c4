using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Wuerstchen.Workflows.Webhooks;

/// <summary>
/// How a delivery is signed: header <c>Wuerstchen-Signature: t={unix seconds},v1={hex HMAC-SHA256}</c>, where the
/// HMAC key is <c>Wuerstchen:Webhooks:Secret</c> (UTF-8) and the message is the timestamp, a dot, and the body's
/// bytes exactly as sent. A receiver recomputes it, compares in constant time, and refuses old timestamps.
/// </summary>
public static class WebhookSignature
{
    public const string Header = "Wuerstchen-Signature";

    /// <summary>The delivery's id, the same on every retry of it, for receivers that drop repeats.</summary>
    public const string DeliveryHeader = "Wuerstchen-Delivery";

    public static string Sign(string secret, long timestamp, ReadOnlySpan<byte> body) =>
        $"t={timestamp.ToString(CultureInfo.InvariantCulture)},v1={Convert.ToHexStringLower(Mac(secret, timestamp, body))}";

    /// <summary>Whether <paramref name="header"/> signs <paramref name="body"/> with <paramref name="secret"/>, timestamped within <paramref name="tolerance"/> of <paramref name="now"/>.</summary>
    public static bool Verify(string secret, string? header, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        long? timestamp = null;
        byte[]? signature = null;
        foreach (string part in (header ?? "").Split(','))
        {
            string[] pair = part.Trim().Split('=', 2);
            if (pair.Length != 2)
                continue;
            if (pair[0] == "t" && long.TryParse(pair[1], NumberStyles.None, CultureInfo.InvariantCulture, out long t))
                timestamp = t;
            else if (pair[0] == "v1" && pair[1].Length == 64 && pair[1].All(Uri.IsHexDigit))
                signature = Convert.FromHexString(pair[1]);
        }
        if (timestamp is not { } stamp || signature is null)
            return false;
        if ((now - DateTimeOffset.FromUnixTimeSeconds(stamp)).Duration() > tolerance)
            return false;
        return CryptographicOperations.FixedTimeEquals(Mac(secret, stamp, body), signature);
    }

    private static byte[] Mac(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        byte[] prefix = Encoding.ASCII.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        byte[] message = new byte[prefix.Length + body.Length];
        prefix.CopyTo(message, 0);
        body.CopyTo(message.AsSpan(prefix.Length));
        return HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), message);
    }
}
