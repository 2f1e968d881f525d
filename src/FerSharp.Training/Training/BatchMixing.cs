using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019): each image of a batch is combined with another
/// image of the same batch and the soft targets are combined in the same proportion. Random numbers come
/// from a <see cref="Random"/> the trainer seeds per epoch, so runs stay reproducible and resumable.
/// </summary>
public static class BatchMixing
{
    /// <summary>
    /// Mixes a float batch [B,1,H,W] and its soft targets [B,C]. Returns new tensors (the inputs are not changed)
    /// and the share λ of each image's own content.
    /// </summary>
    public static (Tensor Images, Tensor Targets, double Lambda) Apply(Tensor images, Tensor targets, AugmentOptions options, Random random)
    {
        ArgumentNullException.ThrowIfNull(images);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(random);
        if (!options.MixesBatch || images.shape[0] < 2)
        {
            return (images.alias(), targets.alias(), 1.0);
        }
        var useCutMix = options.CutMix > 0 && (options.Mixup <= 0 || random.NextDouble() < 0.5);
        var lambda = SampleBeta(random, useCutMix ? options.CutMix : options.Mixup);
        var batch = (int)images.shape[0];
        var order = Enumerable.Range(0, batch).ToArray();
        random.Shuffle(order);
        using var partnerIndex = tensor(order.Select(i => (long)i).ToArray());
        using var partners = images.index_select(0, partnerIndex);
        using var partnerTargets = targets.index_select(0, partnerIndex);
        Tensor mixed;
        if (useCutMix)
        {
            var (height, width) = (images.shape[2], images.shape[3]);
            var cut = Math.Sqrt(1 - lambda);
            var (boxH, boxW) = ((long)Math.Round(height * cut), (long)Math.Round(width * cut));
            var (cy, cx) = (random.NextInt64(height), random.NextInt64(width));
            var (y0, y1) = (Math.Clamp(cy - boxH / 2, 0, height), Math.Clamp(cy + boxH - boxH / 2, 0, height));
            var (x0, x1) = (Math.Clamp(cx - boxW / 2, 0, width), Math.Clamp(cx + boxW - boxW / 2, 0, width));
            mixed = images.clone();
            if (y1 > y0 && x1 > x0)
            {
                using var region = partners.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0);
                using var target = mixed.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0);
                target.copy_(region);
            }
            // The box may be clipped at the border: the label share follows the pixels actually pasted.
            lambda = 1 - (double)((y1 - y0) * (x1 - x0)) / (height * width);
        }
        else
        {
            mixed = images.mul(lambda).add_(partners, alpha: 1 - lambda);
        }
        var mixedTargets = targets.mul(lambda).add_(partnerTargets, alpha: 1 - lambda);
        return (mixed, mixedTargets, lambda);
    }

    /// <summary>Beta(α, α) as X/(X+Y) with X, Y ~ Gamma(α, 1).</summary>
    public static double SampleBeta(Random random, double alpha)
    {
        ArgumentNullException.ThrowIfNull(random);
        if (alpha <= 0) throw new ArgumentOutOfRangeException(nameof(alpha), "alpha must be positive");
        var x = SampleGamma(random, alpha);
        var y = SampleGamma(random, alpha);
        return x + y == 0 ? 0.5 : x / (x + y);
    }

    // Marsaglia & Tsang (2000); shapes below 1 use the boost Gamma(a) = Gamma(a+1) · U^(1/a).
    private static double SampleGamma(Random random, double shape)
    {
        if (shape < 1)
        {
            return SampleGamma(random, shape + 1) * Math.Pow(1 - random.NextDouble(), 1 / shape);
        }
        var d = shape - 1.0 / 3;
        var c = 1 / Math.Sqrt(9 * d);
        while (true)
        {
            double z, v;
            do
            {
                z = StandardNormal(random);
                v = 1 + c * z;
            }
            while (v <= 0);
            v = v * v * v;
            var u = 1 - random.NextDouble();
            if (Math.Log(u) < 0.5 * z * z + d - d * v + d * Math.Log(v)) return d * v;
        }
    }

    private static double StandardNormal(Random random)
    {
        var u1 = 1 - random.NextDouble();
        var u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
