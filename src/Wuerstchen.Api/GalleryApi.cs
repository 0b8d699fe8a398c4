using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.DurableTask.Client;
using SixLabors.ImageSharp;
using SixLabors.ImageSharp.Formats.Jpeg;
using SixLabors.ImageSharp.Processing;
using Wuerstchen.Pipeline.Storage;
using Wuerstchen.Workflows.Generation;

namespace Wuerstchen.Api;

/// <summary>
/// The gallery routes' handlers: generations newest first, a page per call, from the index <see cref="GenerationGallery"/>
/// keeps; and small thumbnails of their images, made once and kept beside the index.
/// </summary>
public sealed class GalleryApi(GenerationGallery gallery, GenerationService generations, IBlobStore store)
{
    /// <summary>The longer side of a thumbnail, in pixels.</summary>
    public const int ThumbnailSize = 320;

    public async Task<IActionResult> List(HttpRequest request, DurableTaskClient client, CancellationToken cancellationToken)
    {
        string? limitText = request.Query["limit"].FirstOrDefault();
        int limit = GenerationGallery.DefaultLimit;
        if (limitText is not null && !int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit))
            return HttpResults.Invalid("limit", $"'{limitText}' is not a whole number in 1 … {GenerationGallery.MaxLimit}.");
        var query = new GalleryQuery(limit, request.Query["continuationToken"].FirstOrDefault(), request.Query["model"].FirstOrDefault(), request.Query["q"].FirstOrDefault());
        var problems = GenerationGallery.Problems(query);
        if (problems.Count > 0)
            return HttpResults.Invalid(problems);
        var page = await gallery.ListAsync(client, query, cancellationToken);
        return new OkObjectResult(GenerationListResponse.From(page, query, request));
    }

    /// <summary>Image <paramref name="index"/> of a completed generation at most <see cref="ThumbnailSize"/> pixels on its longer side, as JPEG.</summary>
    public async Task<IActionResult> Thumbnail(HttpRequest request, DurableTaskClient client, string id, int index, CancellationToken cancellationToken)
    {
        string? image = await generations.ImageBlobAsync(client, id, index, cancellationToken);
        if (image is null)
            return HttpResults.Problem(StatusCodes.Status404NotFound, $"Generation '{id}' has no image {index} (unknown, not finished, or out of range).");
        string thumbnail = GenerationGallery.Thumbnail(id, index);
        if (!await store.ExistsAsync(thumbnail, cancellationToken))
        {
            using var content = new MemoryStream();
            await using (var png = await store.OpenReadAsync(image, cancellationToken))
            using (var picture = await Image.LoadAsync(png, cancellationToken))
            {
                picture.Mutate(p => p.Resize(new ResizeOptions { Mode = ResizeMode.Max, Size = new Size(ThumbnailSize, ThumbnailSize) }));
                await picture.SaveAsJpegAsync(content, new JpegEncoder { Quality = 82 }, cancellationToken);
            }
            content.Position = 0;
            await store.WriteAsync(thumbnail, content, new BlobWriteOptions { ContentType = "image/jpeg" }, cancellationToken);
        }
        request.HttpContext.Response.Headers.CacheControl = "private, max-age=86400";
        return new FileStreamResult(await store.OpenReadAsync(thumbnail, cancellationToken), "image/jpeg");
    }
}

/// <summary>A page of the gallery as a client sees it: newest first; <see cref="Next"/> is the next page's link, null after the last.</summary>
public sealed record GenerationListResponse(IReadOnlyList<GenerationListItem> Items, string? ContinuationToken, string? Next)
{
    public static GenerationListResponse From(GalleryPage page, GalleryQuery query, HttpRequest request)
    {
        string? next = null;
        if (page.ContinuationToken is { } token)
        {
            var parameters = new List<string> { $"limit={query.Limit}", $"continuationToken={Uri.EscapeDataString(token)}" };
            if (!string.IsNullOrEmpty(query.Model))
                parameters.Add($"model={Uri.EscapeDataString(query.Model)}");
            if (!string.IsNullOrEmpty(query.Text))
                parameters.Add($"q={Uri.EscapeDataString(query.Text)}");
            next = HttpResults.Url(request, "generations?" + string.Join('&', parameters));
        }
        return new(page.Items.Select(item => GenerationListItem.From(item, request)).ToArray(), page.ContinuationToken, next);
    }
}

/// <summary>One generation of the gallery: its recipe in short, its status now and, once completed, its image links.</summary>
public sealed record GenerationListItem(string Id, string Status, string StatusUrl, DateTimeOffset CreatedAt, string Prompt, string? NegativePrompt,
    int Width, int Height, ulong Seed, ulong DecoderSeed, int PriorSteps, int DecoderSteps, double PriorGuidance, string PriorModel, string DecoderModel,
    string? RedecodeOf, IReadOnlyList<string> Images, IReadOnlyList<string> Thumbnails)
{
    public static GenerationListItem From(GalleryItem item, HttpRequest request)
    {
        var e = item.Entry;
        string statusUrl = GenerationApi.StatusUrl(request, e.Id);
        var images = item.Status == "Completed" ? Enumerable.Range(0, e.Images).Select(i => $"{statusUrl}/images/{i}").ToArray() : [];
        return new(e.Id, item.Status, statusUrl, e.CreatedAt, e.Prompt, e.NegativePrompt, e.Width, e.Height, e.Seed, e.DecoderSeed, e.PriorSteps,
            e.DecoderSteps, e.PriorGuidance, e.PriorModel, e.DecoderModel, e.RedecodeOf, images, images.Select(i => i + "/thumbnail").ToArray());
    }
}
