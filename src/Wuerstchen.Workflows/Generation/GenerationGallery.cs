using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.DurableTask.Client;
using Wuerstchen.Pipeline.Generation;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Workflows.Generation;

/// <summary>What the gallery keeps of a generation: its recipe in short, enough to list and filter without reading its plan.</summary>
public sealed record GalleryEntry(
    string Id,
    DateTimeOffset CreatedAt,
    string Prompt,
    string? NegativePrompt,
    int Width,
    int Height,
    int Images,
    ulong Seed,
    ulong DecoderSeed,
    int PriorSteps,
    int DecoderSteps,
    double PriorGuidance,
    string PriorModel,
    string DecoderModel,
    string? RedecodeOf);

/// <summary>An entry with where its generation stands now.</summary>
public sealed record GalleryItem(GalleryEntry Entry, string Status);

/// <summary>A page of the gallery, newest first; <see cref="ContinuationToken"/> is null after the last.</summary>
public sealed record GalleryPage(IReadOnlyList<GalleryItem> Items, string? ContinuationToken);

/// <summary>The filters of a gallery listing: a prior model (exact name) and a text found in the prompt or negative prompt.</summary>
public sealed record GalleryQuery(int Limit = GenerationGallery.DefaultLimit, string? ContinuationToken = null, string? Model = null, string? Text = null);

/// <summary>
/// An index of generations, newest first, that pages without reading history: one small blob per generation under
/// <c>gallery/all/</c> (and under its prior model's folder), named by the inverted creation time so the
/// store's name order is newest first. A page is one listing call of the store, continued with its token; a text filter
/// reads a bounded number of entries per call and hands back a token to go on. Entries whose generation was purged
/// are dropped as they are met.
/// </summary>
public sealed class GenerationGallery(IBlobStore store)
{
    public const int DefaultLimit = 24;
    public const int MaxLimit = 100;

    /// <summary>A text filter stops after reading this many entries in one call, and answers with what it found and a token.</summary>
    public const int MaxEntriesReadPerCall = 500;

    private const string Root = AppBlobPrefixes.Gallery;

    /// <summary>The plan blob's metadata that holds when the generation was created: its index entries are named by it, so recording again rewrites the same ones.</summary>
    public const string CreatedAtMetadata = "createdAt";
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string AllPrefix => Root + "all/";

    /// <summary>Where thumbnails of the gallery's images are kept once made.</summary>
    public static string ThumbnailPrefix => Root + "thumbnails/";

    public static string ModelPrefix(string priorModel) =>
        Root + "prior/" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(priorModel)))[..16] + "/";

    public static IReadOnlyList<string> BlobNamesOf(GalleryEntry entry) => IndexBlobs(entry.Id, entry.CreatedAt, entry.PriorModel);

    public static IReadOnlyList<string> IndexBlobs(string generationId, DateTimeOffset createdAt, string priorModel)
    {
        string leaf = (DateTime.MaxValue.Ticks - createdAt.UtcTicks).ToString("D19", CultureInfo.InvariantCulture) + "-" + generationId + ".json";
        return [AllPrefix + leaf, ModelPrefix(priorModel) + leaf];
    }

    public static string Thumbnail(string generationId, int index) => $"{ThumbnailPrefix}{generationId}-{index}.jpg";

    /// <summary>
    /// Every gallery blob of a generation, for retention: its index entries (named by the creation time its plan's
    /// metadata holds) and its thumbnails.
    /// </summary>
    public static IReadOnlyList<string> BlobsOf(string generationId, BlobItemInfo? plan, GenerationBatch? batch)
    {
        var blobs = new List<string>();
        if (batch is null)
            return blobs;
        if (plan is not null && plan.Metadata.TryGetValue(CreatedAtMetadata, out string? created)
            && DateTimeOffset.TryParse(created, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var createdAt))
            blobs.AddRange(IndexBlobs(generationId, createdAt, batch.Settings.PriorModel));
        blobs.AddRange(Enumerable.Range(0, batch.Items.Count * batch.Settings.ImagesPerPrompt).Select(n => Thumbnail(generationId, n)));
        return blobs;
    }

    public static GalleryEntry EntryOf(string generationId, GenerationBatch batch, DateTimeOffset createdAt, string? redecodeOf)
    {
        var item = batch.Items[0];
        var settings = batch.Settings;
        return new GalleryEntry(generationId, createdAt, item.Prompt, item.NegativePrompt, settings.Width, settings.Height,
            settings.ImagesPerPrompt * batch.Items.Count, item.Seed, item.EffectiveDecoderSeed, settings.PriorStepCount, settings.DecoderStepCount,
            settings.PriorGuidanceScale, settings.PriorModel, settings.DecoderModel, redecodeOf);
    }

    /// <summary>Records a generation when it is created (its status is read live when listed).</summary>
    public async Task RecordAsync(GalleryEntry entry, CancellationToken cancellationToken)
    {
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(entry, Json);
        foreach (string name in BlobNamesOf(entry))
        {
            using var content = new MemoryStream(json);
            await store.WriteAsync(name, content, new BlobWriteOptions { ContentType = "application/json" }, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Problems with a query, by parameter name; empty when it is valid.</summary>
    public static IReadOnlyDictionary<string, string[]> Problems(GalleryQuery query)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (query.Limit is < 1 or > MaxLimit)
            errors["limit"] = [$"{query.Limit} is outside 1 … {MaxLimit}."];
        if (query.ContinuationToken is { } token && (token.Length > 2048 || token.Any(char.IsControl)))
            errors["continuationToken"] = ["The token is not one this list handed out."];
        if (query.Text is { Length: > 200 })
            errors["q"] = ["The text filter has more than 200 characters."];
        if (query.Model is { Length: > 300 })
            errors["model"] = ["The model name has more than 300 characters."];
        return errors;
    }

    public async Task<GalleryPage> ListAsync(DurableTaskClient client, GalleryQuery query, CancellationToken cancellationToken)
    {
        string prefix = string.IsNullOrEmpty(query.Model) ? AllPrefix : ModelPrefix(query.Model);
        string? token = string.IsNullOrEmpty(query.ContinuationToken) ? null : query.ContinuationToken;
        var found = new List<GalleryItem>(query.Limit);
        int read = 0;
        do
        {
            // Whole store pages are consumed, so the token handed back is the store's own.
            int pageSize = Math.Min(query.Limit - found.Count, MaxEntriesReadPerCall - read);
            var page = await store.ListPageAsync(prefix, pageSize, token, cancellationToken).ConfigureAwait(false);
            token = page.ContinuationToken;
            read += page.Items.Count;
            var entries = await Task.WhenAll(page.Items.Select(item => ReadAsync(item.Name, cancellationToken))).ConfigureAwait(false);
            var matching = entries.OfType<GalleryEntry>().Where(e => Matches(e, query)).ToArray();
            var statuses = await Task.WhenAll(matching.Select(e => client.GetInstanceAsync(e.Id, getInputsAndOutputs: false, cancellationToken))).ConfigureAwait(false);
            for (int i = 0; i < matching.Length; i++)
            {
                if (statuses[i] is null)
                {
                    await ForgetAsync(matching[i], cancellationToken).ConfigureAwait(false);
                    continue;
                }
                found.Add(new GalleryItem(matching[i], statuses[i]!.RuntimeStatus.ToString()));
            }
        }
        while (token is not null && found.Count < query.Limit && read < MaxEntriesReadPerCall);

        return new GalleryPage(found, token);
    }

    private static bool Matches(GalleryEntry entry, GalleryQuery query) =>
        (string.IsNullOrEmpty(query.Model) || entry.PriorModel == query.Model)
        && (string.IsNullOrEmpty(query.Text)
            || entry.Prompt.Contains(query.Text, StringComparison.OrdinalIgnoreCase)
            || entry.NegativePrompt?.Contains(query.Text, StringComparison.OrdinalIgnoreCase) == true);

    private async Task<GalleryEntry?> ReadAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = await store.OpenReadAsync(name, cancellationToken).ConfigureAwait(false);
            return await JsonSerializer.DeserializeAsync<GalleryEntry>(stream, Json, cancellationToken).ConfigureAwait(false);
        }
        catch (BlobNotFoundException)
        {
            return null; // removed since it was listed
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private async Task ForgetAsync(GalleryEntry entry, CancellationToken cancellationToken)
    {
        foreach (string name in BlobNamesOf(entry))
            await store.DeleteAsync(name, cancellationToken).ConfigureAwait(false);
    }
}
