using FerSharp.Models;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Evaluation;

public static class TestTimeAugmentation
{
    public const int CropSize = FaceViews.CropSize;

    /// <summary>
    /// Up to this many views in total go through the network as one batch; larger batches (evaluation) run one
    /// view at a time, since batches above 64 were slower per image on our 2-core CPU.
    /// </summary>
    public const int OneBatchLimit = 64;

    /// <summary>
    /// Class probabilities [B, classes] of uint8 faces [B,1,48,48], averaged over the views of <paramref name="mode"/>
    /// (a flip-averaging package mirrors each view itself).
    /// </summary>
    public static Tensor PredictProbabilities(EmotionModel model, Tensor faces, TtaMode mode)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(faces);
        using var scope = NewDisposeScope();
        var views = Views(faces, mode, withoutMirrors: model.Metadata.FlipAveraging);
        var count = faces.shape[0];
        if (views.Count > 1 && count * views.Count <= OneBatchLimit)
        {
            // A few faces (a photo, a frame): all views in one forward pass, far cheaper than one call per view.
            var all = model.PredictProbabilities(cat(views.ToArray(), 0));
            return all.view(views.Count, count, all.shape[1]).mean([0]).MoveToOuterDisposeScope();
        }
        Tensor? sum = null;
        foreach (var view in views)
        {
            var p = model.PredictProbabilities(view);
            sum = sum is null ? p : sum.AddTensorInPlace(p);
        }
        return sum!.DivScalarInPlace(views.Count).MoveToOuterDisposeScope();
    }

    /// <summary>As <see cref="PredictProbabilities(EmotionModel, Tensor, TtaMode)"/> for 48x48 byte faces, one row per face.</summary>
    public static float[][] PredictProbabilities(EmotionModel model, IReadOnlyList<byte[]> faces, TtaMode mode)
    {
        ArgumentNullException.ThrowIfNull(model);
        return mode == TtaMode.None
            ? model.PredictProbabilities(faces)
            : EmotionModel.PredictRows(faces, batch => PredictProbabilities(model, batch, mode));
    }

    /// <summary>
    /// The views of a uint8/float batch [B,1,48,48] that <paramref name="mode"/> averages over. With
    /// <paramref name="withoutMirrors"/> (for a model that already averages each input with its mirror) the
    /// mirror views are left out: the mean over the rest is the same, at half the work.
    /// </summary>
    public static IReadOnlyList<Tensor> Views(Tensor faces, TtaMode mode, bool withoutMirrors = false)
    {
        ArgumentNullException.ThrowIfNull(faces);
        var input = faces.to(ScalarType.Float32);
        switch (mode)
        {
            case TtaMode.None:
                return [input];
            case TtaMode.Flip:
                return withoutMirrors ? [input] : [input, input.flip(3)];
            case TtaMode.Crops:
                var size = faces.shape[2];
                var offset = size - CropSize;
                var views = new List<Tensor>();
                foreach (var (y, x) in new[] { (0L, 0L), (0L, offset), (offset, 0L), (offset, offset), (offset / 2, offset / 2) })
                {
                    using var crop = input.narrow(2, y, CropSize).narrow(3, x, CropSize);
                    var resized = nn.functional.interpolate(crop, [size, size], mode: InterpolationMode.Bilinear, align_corners: false);
                    views.Add(resized);
                    if (!withoutMirrors) views.Add(resized.flip(3));
                }
                input.Dispose();
                return views;
            default:
                throw new ArgumentOutOfRangeException(nameof(mode), mode, null);
        }
    }
}
