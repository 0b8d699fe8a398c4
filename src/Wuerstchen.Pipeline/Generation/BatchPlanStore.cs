using System.Text.Json;
using Wuerstchen.Pipeline.Storage;

namespace Wuerstchen.Pipeline.Generation;

/// <summary>Points at one batch of a plan blob: what stage activities receive instead of the prompts themselves.</summary>
public sealed record BatchRef(string PlanBlob, int Index);

/// <summary>Plans (lists of batches) stored as JSON blobs; Durable payloads carry only a <see cref="BatchRef"/>.</summary>
public sealed class BatchPlanStore(IBlobStore store)
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>Writes a plan; with <paramref name="overwrite"/> false an existing plan stays and <see cref="BlobAlreadyExistsException"/> is thrown.</summary>
    public async Task WriteAsync(string planBlob, IReadOnlyList<GenerationBatch> batches, IReadOnlyDictionary<string, string>? metadata = null,
        bool overwrite = true, CancellationToken cancellationToken = default)
    {
        using var content = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(batches, Json));
        var options = new BlobWriteOptions { ContentType = "application/json", Metadata = metadata, Overwrite = overwrite };
        await store.WriteAsync(planBlob, content, options, cancellationToken).ConfigureAwait(false);
    }

    public async Task<IReadOnlyList<GenerationBatch>> ReadAllAsync(string planBlob, CancellationToken cancellationToken)
    {
        await using var stream = await store.OpenReadAsync(planBlob, cancellationToken).ConfigureAwait(false);
        return await JsonSerializer.DeserializeAsync<List<GenerationBatch>>(stream, Json, cancellationToken).ConfigureAwait(false)
               ?? throw new InvalidDataException($"Plan blob '{planBlob}' holds JSON null.");
    }

    public async Task<GenerationBatch> ReadAsync(BatchRef batch, CancellationToken cancellationToken)
    {
        var batches = await ReadAllAsync(batch.PlanBlob, cancellationToken).ConfigureAwait(false);
        if (batch.Index < 0 || batch.Index >= batches.Count)
            throw new InvalidDataException($"Plan blob '{batch.PlanBlob}' has {batches.Count} batches; batch {batch.Index} does not exist.");
        return batches[batch.Index];
    }
}
