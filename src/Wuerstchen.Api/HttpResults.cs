using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Api;

/// <summary>Request bodies and RFC 7807 answers shared by the HTTP triggers.</summary>
internal static class HttpResults
{
    /// <summary>Items any array of a request body may hold while it is read (each field's own limit is checked after).</summary>
    public const int MaxArrayItems = 4096;

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        Converters = { new BoundedListConverterFactory(MaxArrayItems) },
    };

    /// <summary>
    /// The JSON body as <typeparamref name="T"/>, or a 400 naming the field where reading it failed. A body over
    /// <paramref name="maxBytes"/> is answered 413 as soon as it is seen to be: from its Content-Length before reading,
    /// otherwise after reading one byte past the limit.
    /// </summary>
    public static async Task<(T? Body, IActionResult? Error)> ReadBodyAsync<T>(HttpRequest request, long maxBytes, CancellationToken cancellationToken, bool allowEmpty = false) where T : class
    {
        if (allowEmpty && request.ContentLength is null or 0)
            return (null, null);
        if (request.ContentLength > maxBytes)
            return (null, TooLarge(maxBytes));
        try
        {
            await using var body = new LimitedReadStream(request.Body, maxBytes, "The request body", leaveOpen: true);
            return (await JsonSerializer.DeserializeAsync<T>(body, Json, cancellationToken), null);
        }
        catch (InputTooLargeException)
        {
            return (null, TooLarge(maxBytes));
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json reads an unpaired surrogate escape (such as \ud800), then refuses to make a string of it.
            return (null, Invalid(new Dictionary<string, string[]> { ["body"] = [$"The body holds a string that is not valid Unicode text: {e.Message}"] },
                "The request body could not be read."));
        }
        catch (JsonException e)
        {
            string field = string.IsNullOrEmpty(e.Path) || e.Path == "$" ? "body" : e.Path.TrimStart('$', '.');
            return (null, Invalid(new Dictionary<string, string[]> { [field] = [$"The body is not valid JSON for this request: {e.Message}"] },
                "The request body could not be read."));
        }
    }

    private static ObjectResult TooLarge(long maxBytes) =>
        Problem(StatusCodes.Status413PayloadTooLarge, $"The request body is larger than {maxBytes} bytes (Wuerstchen:Api:MaxBodyBytes).");

    public static BadRequestObjectResult Invalid(IReadOnlyDictionary<string, string[]> errors, string title = "The request has invalid fields.") =>
        new(new ValidationProblemDetails(errors.ToDictionary(e => e.Key, e => e.Value)) { Title = title, Status = StatusCodes.Status400BadRequest });

    public static BadRequestObjectResult Invalid(string field, string message) =>
        Invalid(new Dictionary<string, string[]> { [field] = [message] });

    public static ObjectResult Problem(int status, string detail) =>
        new(new ProblemDetails { Status = status, Detail = detail, Title = ReasonPhrases.GetReasonPhrase(status) }) { StatusCode = status };

    /// <summary>A PNG blob as a short-lived read link (when configured and the store can sign one) or as the bytes.</summary>
    public static async Task<IActionResult> PngAsync(IBlobStore store, string blob, ApiOptions options, string fileName, CancellationToken cancellationToken)
    {
        if (options.ImageDelivery == ImageDelivery.Link &&
            await store.GetReadUriAsync(blob, options.LinkLifetime, cancellationToken) is { } link)
            return new RedirectResult(link.ToString(), permanent: false);
        return new FileStreamResult(await store.OpenReadAsync(blob, cancellationToken), "image/png") { FileDownloadName = fileName };
    }

    /// <summary>An absolute URL of this app: <c>{scheme}://{host}/api/{path}</c>.</summary>
    public static string Url(HttpRequest request, string path) => $"{request.Scheme}://{request.Host}/api/{path}";
}
