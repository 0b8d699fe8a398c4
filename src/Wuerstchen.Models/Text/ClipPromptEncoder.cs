using TorchSharp;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.Text;

/// <summary>A pipeline's tokenizer and CLIP text encoder: prompts → <c>last_hidden_state</c> (B, 77, D) with padding masks.</summary>
public sealed class ClipPromptEncoder : IDisposable
{
    public ClipPromptEncoder(ClipTokenizer tokenizer, ClipTextModel model, Device device)
    {
        Tokenizer = tokenizer;
        Model = model;
        Device = device;
    }

    public ClipTokenizer Tokenizer { get; }

    public ClipTextModel Model { get; }

    public Device Device { get; }

    /// <summary>Loads the <c>tokenizer</c> and <c>text_encoder</c> components of a pipeline folder.</summary>
    public static ClipPromptEncoder FromRepository(ModelRepository repository, ScalarType dtype, Device device, string? variant = null)
    {
        var tokenizer = ClipTokenizer.FromDirectory(repository.Component("tokenizer").Directory);
        var model = ClipTextModel.FromComponent(repository.Component("text_encoder"), dtype, variant, device);
        return new ClipPromptEncoder(tokenizer, model, device);
    }

    /// <summary>Each prompt padded (and truncated) to the tokenizer's length, as the pipelines call it, then encoded.</summary>
    public Tensor Encode(IReadOnlyList<string> prompts)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var tokens = Tokenizer.EncodeForModel(prompts);
        int length = tokens[0].InputIds.Length;
        var ids = new long[prompts.Count, length];
        var mask = new long[prompts.Count, length];
        for (int i = 0; i < tokens.Count; i++)
        {
            for (int j = 0; j < length; j++)
            {
                ids[i, j] = tokens[i].InputIds[j];
                mask[i, j] = tokens[i].AttentionMask[j];
            }
        }
        return Model.forward(tensor(ids, device: Device), tensor(mask, device: Device)).MoveToOuterDisposeScope();
    }

    public void Dispose() => Model.Dispose();
}
