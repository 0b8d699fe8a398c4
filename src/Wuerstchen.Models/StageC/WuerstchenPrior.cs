using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Blocks;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.StageC;

/// <summary>
/// Stage C, diffusers' <c>WuerstchenPrior</c> (upstream: modeling_wuerstchen_prior.py): predicts the noise in a 16-channel latent from the ratio r and
/// CLIP-bigG text states. Module tree = checkpoint keys: <c>projection</c>, <c>cond_mapper.{0,2}</c>,
/// <c>blocks.{3k: ResBlock, 3k+1: TimestepBlock, 3k+2: AttnBlock}</c>, <c>out.1</c>.
/// </summary>
public sealed class WuerstchenPrior : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly Conv2d projection;
    private readonly Sequential cond_mapper;
    private readonly ModuleList<nn.Module> blocks;
    private readonly Sequential @out;

    /// <summary>Builds the prior with freshly initialised weights, allocated on <paramref name="device"/> in <paramref name="dtype"/> (default: CPU, float32).</summary>
    public WuerstchenPrior(WuerstchenPriorConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(WuerstchenPrior))
    {
        Config = config;
        projection = nn.Conv2d(config.CIn, config.C, 1, device: device, dtype: dtype);
        cond_mapper = nn.Sequential(
            nn.Linear(config.CCond, config.C, device: device, dtype: dtype), nn.LeakyReLU(0.2), nn.Linear(config.C, config.C, device: device, dtype: dtype));
        blocks = new ModuleList<nn.Module>();
        for (int i = 0; i < config.Depth; i++)
        {
            blocks.Add(new ResBlock(config.C, dropout: config.Dropout, device: device, dtype: dtype));
            blocks.Add(new TimestepBlock(config.C, config.CR, device, dtype));
            blocks.Add(new AttnBlock(config.C, config.C, config.Nhead, selfAttention: true, dropout: config.Dropout, device: device, dtype: dtype));
        }
        @out = nn.Sequential(new WuerstchenLayerNorm(config.C), nn.Conv2d(config.C, config.CIn * 2, 1, device: device, dtype: dtype));
        RegisterComponents();
    }

    public WuerstchenPriorConfig Config { get; }

    /// <summary>
    /// Builds the prior from a <c>prior</c> component (or a single-model folder) on <paramref name="device"/> in
    /// <paramref name="dtype"/> and loads its weights strictly.
    /// </summary>
    public static WuerstchenPrior FromComponent(ModelComponent component, ScalarType? dtype = null, string? variant = null, Device? device = null)
    {
        var model = new WuerstchenPrior(WuerstchenPriorConfig.Read(component.ConfigPath), device, dtype);
        try
        {
            using var weights = component.OpenWeights(variant);
            StateDictLoader.Load(model, weights);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <param name="x">(B, c_in, h, w) noisy latent.</param>
    /// <param name="r">(B,) ratio in [0, 1].</param>
    /// <param name="c">(B, L, c_cond) text states.</param>
    /// <returns>The predicted noise ε̂, (B, c_in, h, w).</returns>
    public override Tensor forward(Tensor x, Tensor r, Tensor c) => Forward(x, r, c, null);

    /// <summary>The forward pass, reporting each named submodule's output to <paramref name="observe"/> (for tests and debugging).</summary>
    public Tensor Forward(Tensor x, Tensor r, Tensor c, Action<string, Tensor>? observe)
    {
        using var scope = NewDisposeScope();
        return Forward(x, r, MapCondition(c, observe), observe).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The text's part of the forward pass, which a sampling loop computes once per generation instead of once per step:
    /// <c>cond_mapper(c)</c>, every attention block's keys and values of it, and the timestep blocks' mappers stacked
    /// into one product.
    /// </summary>
    /// <param name="c">(B, L, c_cond) text states, the batch the forward passes will run on.</param>
    public PriorCondition MapCondition(Tensor c, Action<string, Tensor>? observe = null)
    {
        var embedding = cond_mapper.forward(c);
        observe?.Invoke("cond_mapper", embedding);
        var keyValues = blocks.OfType<AttnBlock>().Select(attention => attention.MapCondition(embedding)).ToArray();
        return new PriorCondition(keyValues, TimestepModulation.Of(blocks.OfType<TimestepBlock>().ToArray()));
    }

    /// <summary>The forward pass with the text already mapped by <see cref="MapCondition"/>.</summary>
    public Tensor Forward(Tensor x, Tensor r, PriorCondition condition, Action<string, Tensor>? observe = null)
    {
        using var scope = NewDisposeScope();
        var xIn = x;
        var hidden = projection.forward(WuerstchenLayerNorm.ToChannelsLast(x));
        observe?.Invoke("projection", hidden);
        var rEmbed = RatioEmbedding.Generate(r, Config.CR).to(x.dtype);
        observe?.Invoke("r_embed", rEmbed);
        var modulation = condition.Timesteps.Map(rEmbed);

        int index = 0, attentionIndex = 0;
        foreach (var block in blocks)
        {
            hidden = block switch
            {
                ResBlock res => res.forward(hidden, null),
                TimestepBlock timestep => modulation.Apply(timestep, hidden),
                AttnBlock attention => attention.Attend(hidden, condition.KeyValues[attentionIndex++]),
                _ => throw new InvalidOperationException($"Unexpected block {block.GetName()}."),
            };
            observe?.Invoke($"blocks.{index++}", hidden);
        }

        var output = @out.forward(hidden);
        observe?.Invoke("out", output);
        var ab = output.chunk(2, dim: 1);
        return ((xIn - ab[0]) / ((1 - ab[1]).abs() + 1e-5)).MoveToOuterDisposeScope();
    }
}

/// <summary>Stage C's conditioning for one generation: each attention block's keys and values of the text, in block order, and the stacked timestep mappers.</summary>
public sealed record PriorCondition(IReadOnlyList<KeyValues> KeyValues, TimestepModulation Timesteps);
