using System.Globalization;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// Random training-time transforms. Rotation, zoom, shift and flip are folded into one affine warp per
/// image (a single grid_sample for the whole batch); erasing blanks a random rectangle.
/// </summary>
public sealed record AugmentOptions
{
    public double RotateDegrees { get; init; }
    /// <summary>Scale is drawn from [1 - Zoom, 1 + Zoom].</summary>
    public double Zoom { get; init; }
    public bool Flip { get; init; }
    /// <summary>Translation as a fraction of the image side, drawn from [-Shift, Shift] on each axis.</summary>
    public double Shift { get; init; }
    /// <summary>Probability of random erasing (a rectangle of 2-20% of the area set to noise).</summary>
    public double Erase { get; init; }
    /// <summary>Mixup: blend each image (and its target) with another of the batch, weight ~ Beta(α, α); 0 = off.</summary>
    public double Mixup { get; init; }
    /// <summary>CutMix: paste a box of another image of the batch, area share ~ Beta(α, α); 0 = off. With mixup too, each batch picks one.</summary>
    public double CutMix { get; init; }

    /// <summary>Brightness: each image gets U(-b, b) added (pixels in [0,1]).</summary>
    public double Brightness { get; init; }
    /// <summary>Contrast: each image is scaled about its mean by a factor from [1 - c, 1 + c].</summary>
    public double Contrast { get; init; }
    /// <summary>Gamma: each image is raised to exp(U(-g, g)), i.e. g = 0.4 spans gamma 0.67-1.49.</summary>
    public double Gamma { get; init; }
    /// <summary>Probability of a Gaussian blur with sigma from 0.3-1.3 pixels (a soft or out-of-focus camera).</summary>
    public double Blur { get; init; }
    /// <summary>Sensor noise: Gaussian noise whose std is drawn per image from [0, n].</summary>
    public double Noise { get; init; }
    /// <summary>Probability of a JPEG round trip at a quality drawn from 20-90.</summary>
    public double Jpeg { get; init; }

    public static AugmentOptions None { get; } = new();

    /// <summary>The photometric set a camera varies, as measured and kept for the shipped packages (<c>photometric</c> in <see cref="Parse"/>).</summary>
    public static AugmentOptions Photometric { get; } = new() { Brightness = 0.2, Contrast = 0.4, Gamma = 0.4, Blur = 0.25, Noise = 0.04, Jpeg = 0.3 };

    /// <summary>The seed recipe: rotation 10°, zoom 0.1, horizontal flip (Keras ImageDataGenerator style).</summary>
    public static AugmentOptions Seed { get; } = new() { RotateDegrees = 10, Zoom = 0.1, Flip = true, Shift = 0.1 };

    public bool IsIdentity => !HasImageTransforms && !MixesBatch;

    /// <summary>Per-image transforms (warp, flip, erase), applied by <see cref="Augmentation.Apply"/>.</summary>
    public bool HasImageTransforms => RotateDegrees != 0 || Zoom != 0 || Flip || Shift != 0 || Erase != 0 || HasPhotometric;

    /// <summary>Per-image changes of light and camera (brightness, contrast, gamma, blur, noise, JPEG).</summary>
    public bool HasPhotometric => Brightness != 0 || Contrast != 0 || Gamma != 0 || Blur != 0 || Noise != 0 || Jpeg != 0;

    /// <summary>Batch-level mixing (mixup/CutMix), applied by <see cref="BatchMixing.Apply"/> where targets are at hand.</summary>
    public bool MixesBatch => Mixup > 0 || CutMix > 0;

    /// <summary>
    /// Parses <c>rotate=15,zoom=0.1,flip,shift=0.1,erase=0.5,mixup=0.2,cutmix=1</c> and the photometric
    /// <c>brightness=0.2,contrast=0.4,gamma=0.4,blur=0.25,noise=0.04,jpeg=0.3</c> (or <c>photometric</c> for
    /// that set), or <c>none</c>.
    /// </summary>
    public static AugmentOptions Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new AugmentOptions();
        if (text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase) || text.Trim().Length == 0)
        {
            return result;
        }
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var kv = part.Split('=', 2, StringSplitOptions.TrimEntries);
            var key = kv[0].ToLowerInvariant();
            double Value()
            {
                if (kv.Length < 2 || !double.TryParse(kv[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0)
                {
                    throw new ArgumentException($"augment option '{part}': expected {key}=<non-negative number>");
                }
                return v;
            }
            result = key switch
            {
                "rotate" or "rotation" => result with { RotateDegrees = Value() },
                "zoom" => result with { Zoom = Math.Min(Value(), 0.9) },
                "shift" => result with { Shift = Math.Min(Value(), 0.5) },
                "erase" => result with { Erase = Math.Min(Value(), 1) },
                "flip" => result with { Flip = kv.Length < 2 || Value() > 0 },
                "mixup" => result with { Mixup = Value() },
                "cutmix" => result with { CutMix = Value() },
                "brightness" => result with { Brightness = Math.Min(Value(), 1) },
                "contrast" => result with { Contrast = Math.Min(Value(), 0.9) },
                "gamma" => result with { Gamma = Math.Min(Value(), 2) },
                "blur" => result with { Blur = Math.Min(Value(), 1) },
                "noise" => result with { Noise = Math.Min(Value(), 0.5) },
                "jpeg" => result with { Jpeg = Math.Min(Value(), 1) },
                "photometric" when kv.Length == 1 => result with
                {
                    Brightness = Photometric.Brightness,
                    Contrast = Photometric.Contrast,
                    Gamma = Photometric.Gamma,
                    Blur = Photometric.Blur,
                    Noise = Photometric.Noise,
                    Jpeg = Photometric.Jpeg,
                },
                _ => throw new ArgumentException($"unknown augment option '{part}': expected rotate, zoom, shift, flip, erase, mixup, cutmix, brightness, contrast, gamma, blur, noise, jpeg or photometric"),
            };
        }
        return result;
    }

    public override string ToString()
    {
        if (IsIdentity) return "none";
        var parts = new List<string>();
        var inv = CultureInfo.InvariantCulture;
        if (RotateDegrees > 0) parts.Add(string.Create(inv, $"rotate={RotateDegrees}"));
        if (Zoom > 0) parts.Add(string.Create(inv, $"zoom={Zoom}"));
        if (Shift > 0) parts.Add(string.Create(inv, $"shift={Shift}"));
        if (Flip) parts.Add("flip");
        if (Erase > 0) parts.Add(string.Create(inv, $"erase={Erase}"));
        if (Mixup > 0) parts.Add(string.Create(inv, $"mixup={Mixup}"));
        if (CutMix > 0) parts.Add(string.Create(inv, $"cutmix={CutMix}"));
        if (Brightness > 0) parts.Add(string.Create(inv, $"brightness={Brightness}"));
        if (Contrast > 0) parts.Add(string.Create(inv, $"contrast={Contrast}"));
        if (Gamma > 0) parts.Add(string.Create(inv, $"gamma={Gamma}"));
        if (Blur > 0) parts.Add(string.Create(inv, $"blur={Blur}"));
        if (Noise > 0) parts.Add(string.Create(inv, $"noise={Noise}"));
        if (Jpeg > 0) parts.Add(string.Create(inv, $"jpeg={Jpeg}"));
        return string.Join(',', parts);
    }
}

public static class Augmentation
{
    /// <summary>Mirror images left-right ([B,C,H,W]).</summary>
    public static Tensor HorizontalFlip(Tensor images) => images.flip(3);

    /// <summary>
    /// Applies <paramref name="options"/> to a float batch [B,1,H,W] with values in [0,1]; the output has the
    /// same shape and range. Randomness comes only from <paramref name="generator"/>, so runs are reproducible.
    /// </summary>
    public static Tensor Apply(Tensor images, AugmentOptions options, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(options);
        if (!options.HasImageTransforms)
        {
            return images.alias();
        }
        using var scope = NewDisposeScope();
        var batch = images.shape[0];
        var output = images;
        if (options.RotateDegrees > 0 || options.Zoom > 0 || options.Shift > 0 || options.Flip)
        {
            var angle = Uniform(batch, options.RotateDegrees * Math.PI / 180, generator);
            var scale = Uniform(batch, options.Zoom, generator).add_(1);
            var tx = Uniform(batch, options.Shift * 2, generator); // normalized coordinates span 2 units
            var ty = Uniform(batch, options.Shift * 2, generator);
            var flipSign = options.Flip
                ? rand(batch, generator: generator).lt(0.5).to(ScalarType.Float32).mul(-2).add(1)
                : ones(batch);
            // theta maps output coordinates to input coordinates: zooming in means sampling a smaller area.
            var cos = angle.cos().div(scale);
            var sin = angle.sin().div(scale);
            var row0 = stack([cos.mul(flipSign), sin.neg(), tx], 1);
            var row1 = stack([sin.mul(flipSign), cos, ty], 1);
            var theta = stack([row0, row1], 1);
            var grid = nn.functional.affine_grid(theta, [.. images.shape], align_corners: false);
            output = nn.functional.grid_sample(images, grid, GridSampleMode.Bilinear, GridSamplePaddingMode.Border, align_corners: false);
        }
        if (options.HasPhotometric)
        {
            output = PhotometricAugmentation.Apply(output, options, generator);
        }
        if (options.Erase > 0)
        {
            output = RandomErase(output, options.Erase, generator);
        }
        return output.clamp(0, 1).MoveToOuterDisposeScope();
    }

    private static Tensor Uniform(long count, double halfRange, Generator generator) =>
        halfRange == 0 ? zeros(count) : rand(count, generator: generator).mul(2 * halfRange).sub(halfRange);

    private static Tensor RandomErase(Tensor images, double probability, Generator generator)
    {
        var (batch, height, width) = (images.shape[0], images.shape[2], images.shape[3]);
        var area = rand(batch, generator: generator).mul(0.18).add(0.02).mul(height * width);
        var aspect = rand(batch, generator: generator).mul(Math.Log(3.0 / 0.3)).add(Math.Log(0.3)).exp();
        var h = area.mul(aspect).sqrt().clamp(1, height);
        var w = area.div(aspect).sqrt().clamp(1, width);
        var y0 = rand(batch, generator: generator).mul(h.neg().add(height));
        var x0 = rand(batch, generator: generator).mul(w.neg().add(width));
        var apply = rand(batch, generator: generator).lt(probability);
        var ys = arange(height, ScalarType.Float32).view(1, 1, height, 1);
        var xs = arange(width, ScalarType.Float32).view(1, 1, 1, width);
        var view = new long[] { batch, 1, 1, 1 };
        var inside = ys.ge(y0.view(view)).logical_and(ys.lt(y0.add(h).view(view)))
            .logical_and(xs.ge(x0.view(view))).logical_and(xs.lt(x0.add(w).view(view)))
            .logical_and(apply.view(view));
        var noise = rand(images.shape, generator: generator);
        return where(inside, noise, images);
    }
}
