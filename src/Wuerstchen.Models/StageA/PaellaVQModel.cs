using TorchSharp;
using TorchSharp.Modules;
using Wuerstchen.Models.Loading;
using static TorchSharp.torch;

namespace Wuerstchen.Models.StageA;

/// <summary>
/// Stage A, diffusers' <c>PaellaVQModel</c> (upstream: modeling_paella_vq_model.py): an f4 VQGAN between RGB images in [0, 1] and 4-channel latents.
/// Module tree = checkpoint keys: <c>in_block.1</c>, <c>down_blocks.*</c> (residual blocks, stride-2 convs, then
/// <c>down_blocks.N.{0 conv, 1 BatchNorm}</c>), <c>vquantizer.embedding</c>, <c>up_blocks.*</c> (<c>up_blocks.0.0</c>,
/// residual blocks, transposed convs), <c>out_block.0</c>.
/// </summary>
public sealed class PaellaVQModel : nn.Module<Tensor, Tensor>
{
    private readonly Sequential in_block;
    private readonly Sequential down_blocks;
    private readonly VectorQuantizer vquantizer;
    private readonly Sequential up_blocks;
    private readonly Sequential out_block;

    /// <summary>Builds the VQGAN with freshly initialised weights, allocated on <paramref name="device"/> in <paramref name="dtype"/> (default: CPU, float32).</summary>
    public PaellaVQModel(PaellaVQModelConfig config, Device? device = null, ScalarType? dtype = null) : base(nameof(PaellaVQModel))
    {
        Config = config;
        var c = config.ChannelLevels;
        int levels = c.Count;
        long scale = config.UpDownScaleFactor;

        in_block = nn.Sequential(nn.PixelUnshuffle(scale), nn.Conv2d(config.InChannels * scale * scale, c[0], 1, device: device, dtype: dtype));

        var down = new List<nn.Module<Tensor, Tensor>>();
        for (int i = 0; i < levels; i++)
        {
            if (i > 0)
                down.Add(nn.Conv2d(c[i - 1], c[i], 4, stride: 2, padding: 1, device: device, dtype: dtype));
            down.Add(new MixingResidualBlock(c[i], c[i] * 4, device, dtype));
        }
        down.Add(nn.Sequential(
            nn.Conv2d(c[^1], config.LatentChannels, 1, bias: false, device: device, dtype: dtype),
            nn.BatchNorm2d(config.LatentChannels, device: device, dtype: dtype)));
        down_blocks = nn.Sequential(down.ToArray());

        vquantizer = new VectorQuantizer(config.NumVqEmbeddings, config.LatentChannels, device, dtype);

        var up = new List<nn.Module<Tensor, Tensor>> { nn.Sequential(nn.Conv2d(config.LatentChannels, c[^1], 1, device: device, dtype: dtype)) };
        for (int i = 0; i < levels; i++)
        {
            long width = c[levels - 1 - i];
            for (int j = 0; j < (i == 0 ? config.BottleneckBlocks : 1); j++)
                up.Add(new MixingResidualBlock(width, width * 4, device, dtype));
            if (i < levels - 1)
                up.Add(nn.ConvTranspose2d(width, c[levels - 2 - i], 4, stride: 2, padding: 1, device: device, dtype: dtype));
        }
        up_blocks = nn.Sequential(up.ToArray());

        out_block = nn.Sequential(nn.Conv2d(c[0], config.OutChannels * scale * scale, 1, device: device, dtype: dtype), nn.PixelShuffle(scale));
        RegisterComponents();
    }

    public PaellaVQModelConfig Config { get; }

    /// <summary>The pipeline's latent scale: it decodes <c>ScaleFactor · latents</c> (upstream: pipeline_wuerstchen.py, <c>self.vqgan.config.scale_factor * latents</c>).</summary>
    public double ScaleFactor => Config.ScaleFactor;

    /// <summary>
    /// Builds the VQGAN from a <c>vqgan</c> component on <paramref name="device"/> in <paramref name="dtype"/> and loads its
    /// weights strictly; BatchNorm runs in eval mode.
    /// </summary>
    public static PaellaVQModel FromComponent(ModelComponent component, ScalarType? dtype = null, string? variant = null, Device? device = null)
    {
        var model = new PaellaVQModel(PaellaVQModelConfig.Read(component.ConfigPath), device, dtype);
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

    /// <summary>Reconstructs an image through the latents, unquantised (diffusers' <c>forward</c>).</summary>
    public override Tensor forward(Tensor image)
    {
        using var scope = NewDisposeScope();
        return Decode(Encode(image)).MoveToOuterDisposeScope();
    }

    /// <summary>(B, in_channels, H, W) image in [0, 1] → (B, latent_channels, H/f, W/f) latents: neither quantised nor scaled.</summary>
    public Tensor Encode(Tensor image)
    {
        using var scope = NewDisposeScope();
        return down_blocks.forward(in_block.forward(image)).MoveToOuterDisposeScope();
    }

    /// <summary>The nearest codebook entries of <paramref name="latents"/> and their indices (see <see cref="VectorQuantizer.forward"/>).</summary>
    public (Tensor Quantized, Tensor Indices) Quantize(Tensor latents) => vquantizer.forward(latents);

    /// <summary>Latents → image. By default the latents go to the decoder as they are, as in the pipeline; otherwise they are quantised first.</summary>
    public Tensor Decode(Tensor latents, bool forceNotQuantize = true)
    {
        using var scope = NewDisposeScope();
        var input = forceNotQuantize ? latents : Quantize(latents).Quantized;
        return out_block.forward(up_blocks.forward(input)).MoveToOuterDisposeScope();
    }
}
