using System.Diagnostics;

using FerSharp.Data;
using FerSharp.Models;

namespace FerSharp.Evaluation;

/// <summary>
/// The headline numbers recorded in a shipped package's <c>model.json</c> (and quoted in its model card):
/// accuracy on PublicTest and PrivateTest of the original FER2013 pixels, plain and with test-time
/// augmentation, per-class recall; the same faces from the contrast-stretched image-folder release; the FER+
/// test set for 8-class packages. Computed on the shipped package itself, so a fresh <c>fer evaluate</c>
/// reproduces them exactly.
/// </summary>
public static class TestSetMetrics
{
    /// <summary>Key prefix of figures on the image-folder release (contrast-stretched, JPEG) instead of the original pixels.</summary>
    public const string ImageFolderPrefix = "images_";

    /// <summary>Key prefix of FER+ figures; the rule follows (<c>ferplus_majority_privatetest_accuracy</c>).</summary>
    public const string FerPlusPrefix = "ferplus_";

    public static string Key(DataSplit split, TtaMode tta) =>
        $"{split.ToString().ToLowerInvariant()}_accuracy{(tta == TtaMode.None ? "" : "_" + tta.ToString().ToLowerInvariant())}";

    public static string RecallKey(DataSplit split, string className) => $"{split.ToString().ToLowerInvariant()}_recall_{className}";

    /// <summary>The test-time augmentations scored when shipping: ten crops cost ten times a view and are measured by <c>fer evaluate --tta crops</c>.</summary>
    public static IReadOnlyList<TtaMode> ShippedTta { get; } = [TtaMode.None, TtaMode.Flip];

    /// <summary>PublicTest and PrivateTest accuracy for each of <paramref name="ttas"/>, macro F1 and per-class recall (one view).</summary>
    public static Dictionary<string, double> Measure(EmotionModel model, FaceDataset data, IReadOnlyList<TtaMode>? ttas = null,
        string prefix = "", CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        var metrics = new Dictionary<string, double>();
        foreach (var split in new[] { DataSplit.PublicTest, DataSplit.PrivateTest })
        {
            var faces = data.Subset(split);
            if (faces.Count == 0) continue;
            foreach (var tta in ttas ?? ShippedTta)
            {
                var result = Evaluator.Evaluate(model, faces, new EvaluationOptions { Tta = tta, CompareWithoutTta = false }, split.ToString(),
                    cancellationToken: cancellationToken);
                metrics[prefix + Key(split, tta)] = Math.Round(result.Metrics.Accuracy, 6);
                if (tta != TtaMode.None) continue;
                metrics[$"{prefix}{split.ToString().ToLowerInvariant()}_macro_f1"] = Math.Round(result.Metrics.MacroF1, 6);
                foreach (var c in result.Metrics.PerClass.Where(c => c.Support > 0))
                {
                    metrics[prefix + RecallKey(split, c.Name)] = Math.Round(c.Recall, 6);
                }
            }
        }
        return metrics;
    }

    /// <summary>
    /// Median milliseconds per face at batch 1 on the package's own engine, pre-processing and flip averaging
    /// included: what one face in a photo costs the classifier on this machine.
    /// </summary>
    public static double MeasureLatency(EmotionModel model, int runs = 200)
    {
        ArgumentNullException.ThrowIfNull(model);
        var face = new byte[FaceDataset.PixelsPerImage];
        for (var p = 0; p < face.Length; p++) face[p] = (byte)(p * 7 % 256);
        IReadOnlyList<byte[]> one = [face];
        for (var i = 0; i < 20; i++) model.PredictProbabilities(one);
        var times = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            var watch = Stopwatch.StartNew();
            model.PredictProbabilities(one);
            times[i] = watch.Elapsed.TotalMilliseconds;
        }
        Array.Sort(times);
        return Math.Round(times[runs / 2], 3);
    }
}
