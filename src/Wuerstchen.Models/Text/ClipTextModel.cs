using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Text;

/// <summary>
/// transformers' <c>CLIPTextModel</c> (pre-LayerNorm transformer, causal and padding masks), returning
/// <c>last_hidden_state</c> for every position. Module tree = checkpoint keys: <c>text_model.embeddings…</c>,
/// <c>text_model.encoder.layers.{i}…</c>, <c>text_model.final_layer_norm</c>.
/// </summary>
public sealed class ClipTextModel : nn.Module<Tensor, Tensor?, Tensor>
{
    private const string Prefix = "text_model.";

    private readonly ClipTextTransformer text_model;

    /// <summary>Builds the model with freshly initialised weights, allocated on <paramref name="device"/> in <paramref name="dtype"/> (default: CPU, float32).</summary>
    public ClipTextModel(ClipTextConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(ClipTextModel))
    {
        Config = config;
        text_model = new ClipTextTransformer(config, device, dtype);
        RegisterComponents();
    }

    public ClipTextConfig Config { get; }

    /// <summary>Builds the model from a <c>text_encoder</c> component on <paramref name="device"/> in <paramref name="dtype"/> and loads its weights strictly.</summary>
    public static ClipTextModel FromComponent(ModelComponent component, ScalarType? dtype = null, string? variant = null, Device? device = null)
    {
        var model = new ClipTextModel(ClipTextConfig.Read(component.ConfigPath), device, dtype);
        try
        {
            using var weights = component.OpenWeights(variant);
            StateDictLoader.Load(model, weights, new StateDictLoadOptions { MapKey = MapCheckpointKey });
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <summary>
    /// Checkpoints saved by transformers 5 drop the <c>text_model.</c> prefix that the published ones carry;
    /// <c>position_ids</c> is a legacy buffer recomputed at run time.
    /// </summary>
    public static string? MapCheckpointKey(string key)
    {
        string full = key.StartsWith(Prefix, StringComparison.Ordinal) ? key : Prefix + key;
        return full == Prefix + "embeddings.position_ids" ? null : full;
    }

    /// <param name="inputIds">(B, L) int64 token ids.</param>
    /// <param name="attentionMask">(B, L) with 1 for real tokens and 0 for padding, or null for none.</param>
    /// <returns><c>last_hidden_state</c>, (B, L, hidden_size).</returns>
    public override Tensor forward(Tensor inputIds, Tensor? attentionMask) => text_model.forward(inputIds, attentionMask);
}

internal sealed class ClipTextTransformer : nn.Module<Tensor, Tensor?, Tensor>
{
    private readonly ClipTextEmbeddings embeddings;
    private readonly ClipEncoder encoder;
    private readonly LayerNorm final_layer_norm;

    public ClipTextTransformer(ClipTextConfig config, Device? device, ScalarType? dtype) : base(nameof(ClipTextTransformer))
    {
        embeddings = new ClipTextEmbeddings(config, device, dtype);
        encoder = new ClipEncoder(config, device, dtype);
        final_layer_norm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds, Tensor? attentionMask)
    {
        using var scope = NewDisposeScope();
        long length = inputIds.shape[1];
        var hidden = embeddings.forward(inputIds);

        // Boolean mask, true = may attend: key j ≤ query i (causal) and key j is a real token (padding).
        var mask = ones(length, length, dtype: @bool, device: inputIds.device).tril().view(1, 1, length, length);
        if (attentionMask is not null)
            mask = mask.logical_and(attentionMask.to(@bool).view(-1, 1, 1, length));

        hidden = encoder.forward(hidden, mask);
        return final_layer_norm.forward(hidden).MoveToOuterDisposeScope();
    }
}

internal sealed class ClipTextEmbeddings : nn.Module<Tensor, Tensor>
{
    private readonly Embedding token_embedding;
    private readonly Embedding position_embedding;
    private readonly long _maxPositions;

    public ClipTextEmbeddings(ClipTextConfig config, Device? device, ScalarType? dtype) : base(nameof(ClipTextEmbeddings))
    {
        token_embedding = nn.Embedding(config.VocabSize, config.HiddenSize, device: device, dtype: dtype);
        position_embedding = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize, device: device, dtype: dtype);
        _maxPositions = config.MaxPositionEmbeddings;
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds)
    {
        long length = inputIds.shape[1];
        if (length > _maxPositions)
            throw new ArgumentException($"The text encoder takes at most {_maxPositions} tokens; got {length}.", nameof(inputIds));
        using var positions = arange(length, dtype: int64, device: inputIds.device);
        using var tokens = token_embedding.forward(inputIds);
        using var placed = position_embedding.forward(positions);
        return tokens + placed;
    }
}

internal sealed class ClipEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<ClipEncoderLayer> layers;

    public ClipEncoder(ClipTextConfig config, Device? device, ScalarType? dtype) : base(nameof(ClipEncoder))
    {
        layers = new ModuleList<ClipEncoderLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new ClipEncoderLayer(config, device, dtype)).ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor mask)
    {
        foreach (var layer in layers)
            hidden = layer.forward(hidden, mask);
        return hidden;
    }
}

internal sealed class ClipEncoderLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly LayerNorm layer_norm1;
    private readonly ClipAttention self_attn;
    private readonly LayerNorm layer_norm2;
    private readonly ClipMlp mlp;

    public ClipEncoderLayer(ClipTextConfig config, Device? device, ScalarType? dtype) : base(nameof(ClipEncoderLayer))
    {
        layer_norm1 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        self_attn = new ClipAttention(config, device, dtype);
        layer_norm2 = nn.LayerNorm(config.HiddenSize, config.LayerNormEps, device: device, dtype: dtype);
        mlp = new ClipMlp(config, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor mask)
    {
        hidden = hidden + self_attn.forward(layer_norm1.forward(hidden), mask);
        return hidden + mlp.forward(layer_norm2.forward(hidden));
    }
}

internal sealed class ClipAttention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear out_proj;
    private readonly long _heads;
    private readonly long _headDim;

    public ClipAttention(ClipTextConfig config, Device? device, ScalarType? dtype) : base(nameof(ClipAttention))
    {
        q_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device, dtype: dtype);
        k_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device, dtype: dtype);
        v_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device, dtype: dtype);
        out_proj = nn.Linear(config.HiddenSize, config.HiddenSize, device: device, dtype: dtype);
        _heads = config.NumAttentionHeads;
        _headDim = config.HeadDim;
        RegisterComponents();
    }

    /// <param name="hidden">(B, L, D)</param>
    /// <param name="mask">boolean (B or 1, 1, L, L), true where a query may attend to a key.</param>
    public override Tensor forward(Tensor hidden, Tensor mask)
    {
        long batch = hidden.shape[0], length = hidden.shape[1];
        Tensor Heads(Tensor x) => x.view(batch, length, _heads, _headDim).transpose(1, 2);
        // SDPA scales by head_dim^-½, as CLIPAttention does.
        var attended = nn.functional.scaled_dot_product_attention(
            Heads(q_proj.forward(hidden)), Heads(k_proj.forward(hidden)), Heads(v_proj.forward(hidden)), mask);
        return out_proj.forward(attended.transpose(1, 2).reshape(batch, length, _heads * _headDim));
    }
}

internal sealed class ClipMlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear fc1;
    private readonly Linear fc2;
    private readonly bool _quickGelu;

    public ClipMlp(ClipTextConfig config, Device? device, ScalarType? dtype) : base(nameof(ClipMlp))
    {
        fc1 = nn.Linear(config.HiddenSize, config.IntermediateSize, device: device, dtype: dtype);
        fc2 = nn.Linear(config.IntermediateSize, config.HiddenSize, device: device, dtype: dtype);
        _quickGelu = config.HiddenAct == "quick_gelu";
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden)
    {
        var inner = fc1.forward(hidden);
        inner = _quickGelu ? inner * sigmoid(inner * 1.702) : nn.functional.gelu(inner);
        return fc2.forward(inner);
    }
}
