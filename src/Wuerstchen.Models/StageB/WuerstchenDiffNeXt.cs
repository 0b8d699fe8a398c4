using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Blocks;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.StageB;

/// <summary>
/// Stage B, diffusers' <c>WuerstchenDiffNeXt</c> (upstream: modeling_wuerstchen_diffnext.py): a U-Net that predicts the noise in a VQGAN latent from the ratio
/// r, Stage C's EfficientNet-space embedding and CLIP-H text states. Module tree = checkpoint keys: <c>clip_mapper</c>,
/// <c>effnet_mappers.{i}</c> (only where the level injects effnet; one per down level, then one per up block),
/// <c>embedding.1</c>, <c>down_blocks.{level}.{j}</c>, <c>up_blocks.{u}.{j}</c> (u = levels − 1 − level), <c>clf.1</c>.
/// </summary>
public sealed class WuerstchenDiffNeXt : nn.Module<Tensor, Tensor, Tensor, Tensor, Tensor>
{
    private const double Eps = 1e-3;

    private readonly Linear clip_mapper;
    private readonly ModuleList<nn.Module<Tensor, Tensor>> effnet_mappers;
    private readonly Sequential embedding;
    private readonly ModuleList<ModuleList<nn.Module>> down_blocks;
    private readonly ModuleList<ModuleList<nn.Module>> up_blocks;
    private readonly Sequential clf;
    private readonly long[] _condShape;

    /// <summary>Builds the decoder with freshly initialised weights, allocated on <paramref name="device"/> in <paramref name="dtype"/> (default: CPU, float32).</summary>
    public WuerstchenDiffNeXt(WuerstchenDiffNeXtConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(WuerstchenDiffNeXt))
    {
        config.Validate(nameof(WuerstchenDiffNeXtConfig));
        Config = config;
        int levels = config.Levels;
        var widths = config.CHidden;

        clip_mapper = nn.Linear(config.ClipEmbd, config.CCond, device: device, dtype: dtype);
        // Levels without effnet injection hold a parameterless Identity, so the keys keep the reference's indices
        // (its list holds None there). A ModuleDict would do the same, but TorchSharp's Module.to(dtype) fails on it.
        effnet_mappers = new ModuleList<nn.Module<Tensor, Tensor>>();
        foreach (bool inject in config.InjectEffnet.Concat(config.InjectEffnet.Reverse()))
            effnet_mappers.Add(inject ? nn.Conv2d(config.EffnetEmbd, config.CCond, 1, device: device, dtype: dtype) : nn.Identity());
        _condShape = [config.CCond];
        embedding = nn.Sequential(
            nn.PixelUnshuffle(config.PatchSize),
            nn.Conv2d(config.CIn * config.PatchSize * config.PatchSize, widths[0], 1, device: device, dtype: dtype),
            new WuerstchenLayerNorm(widths[0]));

        down_blocks = new ModuleList<ModuleList<nn.Module>>();
        for (int level = 0; level < levels; level++)
        {
            var down = new ModuleList<nn.Module>();
            if (level > 0)
                down.Add(nn.Sequential(new WuerstchenLayerNorm(widths[level - 1]), nn.Conv2d(widths[level - 1], widths[level], 2, stride: 2, device: device, dtype: dtype)));
            int effnetSkip = config.InjectEffnet[level] ? config.CCond : 0;
            for (int repeat = 0; repeat < config.Blocks[level]; repeat++)
            {
                foreach (char kind in config.LevelConfig[level])
                    down.Add(Block(config, kind, level, effnetSkip, device, dtype));
            }
            down_blocks.Add(down);
        }

        up_blocks = new ModuleList<ModuleList<nn.Module>>();
        for (int level = levels - 1; level >= 0; level--)
        {
            var up = new ModuleList<nn.Module>();
            for (int repeat = 0; repeat < config.Blocks[level]; repeat++)
            {
                for (int k = 0; k < config.LevelConfig[level].Length; k++)
                {
                    int unetSkip = level < levels - 1 && repeat == 0 && k == 0 ? widths[level] : 0;
                    int effnetSkip = config.InjectEffnet[level] ? config.CCond : 0;
                    up.Add(Block(config, config.LevelConfig[level][k], level, unetSkip + effnetSkip, device, dtype));
                }
            }
            if (level > 0)
                up.Add(nn.Sequential(new WuerstchenLayerNorm(widths[level]), nn.ConvTranspose2d(widths[level], widths[level - 1], 2, stride: 2, device: device, dtype: dtype)));
            up_blocks.Add(up);
        }

        clf = nn.Sequential(
            new WuerstchenLayerNorm(widths[0]),
            nn.Conv2d(widths[0], 2 * config.COut * config.PatchSize * config.PatchSize, 1, device: device, dtype: dtype),
            nn.PixelShuffle(config.PatchSize));
        RegisterComponents();
    }

    public WuerstchenDiffNeXtConfig Config { get; }

    /// <summary>
    /// Builds the decoder from a <c>decoder</c> component (or a single-model folder) on <paramref name="device"/> in
    /// <paramref name="dtype"/> and loads its weights strictly.
    /// </summary>
    public static WuerstchenDiffNeXt FromComponent(ModelComponent component, ScalarType? dtype = null, string? variant = null, Device? device = null)
    {
        var model = new WuerstchenDiffNeXt(WuerstchenDiffNeXtConfig.Read(component.ConfigPath), device, dtype);
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

    /// <summary>The spatial size of U-Net level <paramref name="level"/> for a latent of <paramref name="height"/>×<paramref name="width"/>.</summary>
    public (long Height, long Width) LevelSize(int level, long height, long width) =>
        (height / Config.PatchSize >> level, width / Config.PatchSize >> level);

    /// <summary>
    /// Resizes the effnet embedding to a level's size as the reference does: antialiased bicubic with aligned corners,
    /// computed in float32 and returned in <paramref name="effnet"/>'s dtype.
    /// </summary>
    public static Tensor ResizeEffnet(Tensor effnet, long height, long width)
    {
        using var scope = NewDisposeScope();
        var resized = nn.functional.interpolate(effnet.to(float32), [height, width], mode: InterpolationMode.Bicubic,
            align_corners: true, antialias: true);
        return resized.to(effnet.dtype).MoveToOuterDisposeScope();
    }

    /// <param name="x">(B, c_in, H, W) noisy latent; H and W must be multiples of patch_size · 2^(levels − 1).</param>
    /// <param name="r">(B,) ratio in [0, 1].</param>
    /// <param name="effnet">(B, effnet_embd, h, w) Stage C's image embedding, any size.</param>
    /// <param name="clip">(B, L, clip_embd) text states.</param>
    /// <returns>The predicted noise ε̂, (B, c_out, H, W).</returns>
    public override Tensor forward(Tensor x, Tensor r, Tensor effnet, Tensor clip) => Forward(x, r, effnet, clip, null);

    /// <summary>
    /// The forward pass, reporting named intermediates to <paramref name="observe"/> (for tests and debugging): <c>r_embed</c>,
    /// <c>clip_mapper</c> (before the sequence norm), <c>embedding</c>, <c>effnet_resized.HxW</c>, <c>effnet_mappers.{i}</c>,
    /// <c>clf</c> (before the output head).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor r, Tensor effnet, Tensor clip, Action<string, Tensor>? observe)
    {
        CheckLatent(x);
        using var scope = NewDisposeScope();
        var condition = MapCondition(effnet, clip, x.shape[2], x.shape[3], observe);
        return Forward(x, r, condition, observe).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Everything of the forward pass that depends only on the conditioning, which a sampling loop computes once per
    /// generation instead of once per step: <c>clip_mapper</c> and its sequence norm, every attention block's
    /// <c>kv_mapper</c>, and the effnet embedding resized to each injecting level's size and mapped.
    /// </summary>
    /// <param name="effnet">(B, effnet_embd, h, w) Stage C's image embedding, any size.</param>
    /// <param name="clip">(B, L, clip_embd) text states.</param>
    /// <param name="latentHeight">The height of the latents the forward passes will take (it sets each level's size).</param>
    /// <param name="latentWidth">Their width.</param>
    public DecoderCondition MapCondition(Tensor effnet, Tensor clip, long latentHeight, long latentWidth, Action<string, Tensor>? observe = null)
    {
        var mappedClip = clip_mapper.forward(clip);
        observe?.Invoke("clip_mapper", mappedClip);
        var text = nn.functional.layer_norm(mappedClip, _condShape, eps: 1e-6);
        var allBlocks = down_blocks.SelectMany(level => level).Concat(up_blocks.SelectMany(level => level)).ToArray();
        var keyValues = new Dictionary<AttnBlock, KeyValues>(ReferenceEqualityComparer.Instance);
        foreach (var block in allBlocks.OfType<AttnBlock>())
            keyValues[block] = block.MapCondition(text);
        var timesteps = TimestepModulation.Of(allBlocks.OfType<TimestepBlock>().ToArray());

        int levels = down_blocks.Count;
        var mappedEffnet = new Tensor?[effnet_mappers.Count];
        for (int index = 0; index < effnet_mappers.Count; index++)
        {
            if (effnet_mappers[index] is not Conv2d mapper)
                continue;
            int level = index < levels ? index : 2 * levels - 1 - index;
            var (height, width) = LevelSize(level, latentHeight, latentWidth);
            var resized = ResizeEffnet(effnet, height, width);
            observe?.Invoke($"effnet_resized.{height}x{width}", resized);
            // Stored channels last, like the activations it joins, so that joining it is a plain copy.
            using var mapped = mapper.forward(resized);
            mappedEffnet[index] = WuerstchenLayerNorm.ToChannelsLast(mapped);
            observe?.Invoke($"effnet_mappers.{index}", mappedEffnet[index]!);
        }
        return new DecoderCondition(keyValues, timesteps, mappedEffnet, latentHeight, latentWidth);
    }

    /// <summary>The forward pass with the conditioning already mapped by <see cref="MapCondition"/>.</summary>
    public Tensor Forward(Tensor x, Tensor r, DecoderCondition condition, Action<string, Tensor>? observe = null)
    {
        CheckLatent(x);
        if (x.shape[2] != condition.LatentHeight || x.shape[3] != condition.LatentWidth)
            throw new ArgumentException($"The condition was mapped for {condition.LatentHeight}×{condition.LatentWidth} latents; got [{string.Join(", ", x.shape)}].", nameof(x));

        using var scope = NewDisposeScope();
        var rEmbed = RatioEmbedding.Generate(r, Config.CR).to(x.dtype);
        observe?.Invoke("r_embed", rEmbed);
        var modulation = condition.Timesteps.Map(rEmbed);

        var hidden = embedding.forward(x);
        observe?.Invoke("embedding", hidden);

        var levelOutputs = new List<Tensor>();
        for (int level = 0; level < down_blocks.Count; level++)
        {
            var effnetC = condition.Effnet[level];
            foreach (var block in down_blocks[level])
            {
                hidden = block is ResBlockStageB res
                    ? res.forward(hidden, effnetC)
                    : Apply(block, hidden, modulation, condition);
            }
            levelOutputs.Insert(0, hidden);
        }

        hidden = levelOutputs[0];
        for (int u = 0; u < up_blocks.Count; u++)
        {
            var effnetC = condition.Effnet[down_blocks.Count + u];
            for (int j = 0; j < up_blocks[u].Count; j++)
            {
                var block = up_blocks[u][j];
                if (block is ResBlockStageB res)
                {
                    var skips = new List<Tensor>(2);
                    if (j == 0 && u > 0)
                        skips.Add(levelOutputs[u]);
                    if (effnetC is not null)
                        skips.Add(effnetC);
                    hidden = res.Forward(hidden, skips);
                }
                else
                {
                    hidden = Apply(block, hidden, modulation, condition);
                }
            }
        }

        var output = clf.forward(hidden);
        observe?.Invoke("clf", output);
        var ab = output.chunk(2, dim: 1);
        var scale = ab[1].sigmoid() * (1 - 2 * Eps) + Eps;
        return ((x - ab[0]) / scale).MoveToOuterDisposeScope();
    }

    private void CheckLatent(Tensor x)
    {
        long multiple = Config.SpatialGranularity;
        if (x.dim() != 4 || x.shape[2] % multiple != 0 || x.shape[3] % multiple != 0)
            throw new ArgumentException($"The latent must be (B, C, H, W) with H and W multiples of {multiple}; got [{string.Join(", ", x.shape)}].", nameof(x));
    }

    private static nn.Module Block(WuerstchenDiffNeXtConfig config, char kind, int level, int cSkip, Device? device, ScalarType? dtype) => kind switch
    {
        'C' => new ResBlockStageB(config.CHidden[level], cSkip, config.KernelSize, config.DropoutAt(level), device, dtype),
        'T' => new TimestepBlock(config.CHidden[level], config.CR, device, dtype),
        'A' => new AttnBlock(config.CHidden[level], config.CCond, config.Nhead[level], selfAttention: true, dropout: config.DropoutAt(level), device: device, dtype: dtype),
        _ => throw new ArgumentException($"Unknown block type '{kind}'.", nameof(kind)),
    };

    private static Tensor Apply(nn.Module block, Tensor hidden, TimestepModulation.StepModulation modulation, DecoderCondition condition) => block switch
    {
        TimestepBlock timestep => modulation.Apply(timestep, hidden),
        AttnBlock attention => attention.Attend(hidden, condition.KeyValues[attention]),
        Sequential sampler => sampler.forward(hidden),
        _ => throw new InvalidOperationException($"Unexpected block {block.GetName()}."),
    };
}

/// <summary>
/// Stage B's conditioning for one generation at one latent size: each attention block's keys and values of the text,
/// the stacked timestep mappers, and per effnet mapper index the mapped effnet embedding (null where that level injects none).
/// </summary>
public sealed record DecoderCondition(IReadOnlyDictionary<AttnBlock, KeyValues> KeyValues, TimestepModulation Timesteps, IReadOnlyList<Tensor?> Effnet,
    long LatentHeight, long LatentWidth);
