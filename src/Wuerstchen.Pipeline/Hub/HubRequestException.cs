using System.Net;

namespace Wuerstchen.Pipeline.Hub;

/// <summary>A request to the Hub that failed: an HTTP error status, or no answer at all (<see cref="StatusCode"/> null).</summary>
public sealed class HubRequestException : Exception
{
    public HubRequestException(string message, HttpStatusCode? statusCode = null, Exception? inner = null)
        : base(message, inner)
    {
        StatusCode = statusCode;
    }

    /// <summary>Null when the endpoint could not be reached or did not answer in time.</summary>
    public HttpStatusCode? StatusCode { get; }

    internal bool IsTransient => StatusCode is null or HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError;
}
