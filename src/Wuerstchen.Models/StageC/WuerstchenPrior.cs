using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Blocks;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.StageC;

/// <summary>
/// Stage C, diffusers' <c>WuerstchenPrior</c> (spec §2): predicts the noise in a 16-channel latent from the ratio r and
/// CLIP-bigG text states. Module tree = checkpoint keys: <c>projection</c>, <c>cond_mapper.{0,2}</c>,
/// <c>blocks.{3k: ResBlock, 3k+1: TimestepBlock, 3k+2: AttnBlock}</c>, <c>out.1</c>.
/// </summary>
public sealed class WuerstchenPrior : nn.Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly Conv2d projection;
    private readonly Sequential cond_mapper;
    private readonly ModuleList<nn.Module> blocks;
    private readonly Sequential @out;

    public WuerstchenPrior(WuerstchenPriorConfig config) : base(nameof(WuerstchenPrior))
    {
        Config = config;
        projection = nn.Conv2d(config.CIn, config.C, 1);
        cond_mapper = nn.Sequential(nn.Linear(config.CCond, config.C), nn.LeakyReLU(0.2), nn.Linear(config.C, config.C));
        blocks = new ModuleList<nn.Module>();
        for (int i = 0; i < config.Depth; i++)
        {
            blocks.Add(new ResBlock(config.C, dropout: config.Dropout));
            blocks.Add(new TimestepBlock(config.C, config.CR));
            blocks.Add(new AttnBlock(config.C, config.C, config.Nhead, selfAttention: true, dropout: config.Dropout));
        }
        @out = nn.Sequential(new WuerstchenLayerNorm(config.C), nn.Conv2d(config.C, config.CIn * 2, 1));
        RegisterComponents();
    }

    public WuerstchenPriorConfig Config { get; }

    /// <summary>Builds the prior from a <c>prior</c> component (or a single-model folder) and loads its weights strictly.</summary>
    public static WuerstchenPrior FromComponent(ModelComponent component, ScalarType? dtype = null, string? variant = null)
    {
        var model = new WuerstchenPrior(WuerstchenPriorConfig.Read(component.ConfigPath));
        using var weights = component.OpenWeights(variant);
        StateDictLoader.Load(model, weights, new StateDictLoadOptions { DType = dtype });
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
        var xIn = x;
        var hidden = projection.forward(x);
        observe?.Invoke("projection", hidden);
        var cEmbed = cond_mapper.forward(c);
        observe?.Invoke("cond_mapper", cEmbed);
        var rEmbed = RatioEmbedding.Generate(r, Config.CR).to(x.dtype);
        observe?.Invoke("r_embed", rEmbed);

        int index = 0;
        foreach (var block in blocks)
        {
            hidden = block switch
            {
                ResBlock res => res.forward(hidden, null),
                TimestepBlock timestep => timestep.forward(hidden, rEmbed),
                AttnBlock attention => attention.forward(hidden, cEmbed),
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
