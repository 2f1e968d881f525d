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
        var one = OneTimedFace();
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

    /// <summary>Prefix of the int8 network's figures (<see cref="MeasureInt8"/>).</summary>
    public const string Int8Prefix = ModelMetadata.Int8MetricPrefix;

    /// <summary>
    /// The package's int8 network against its float network, both on ONNX Runtime: PublicTest and PrivateTest
    /// accuracy, macro F1 and the share of faces given the same class (<c>int8_privatetest_agreement</c>), then one
    /// face's median time on one thread, the two networks timed in turn (<c>int8_latency_ms_per_face</c>,
    /// <c>onnxruntime_latency_ms_per_face</c>).
    /// </summary>
    public static Dictionary<string, double> MeasureInt8(string package, FaceDataset data, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var exact = OnnxFaceClassifier.Load(package, new ClassifierOptions { Precision = NetworkPrecision.Float });
        using var int8 = OnnxFaceClassifier.Load(package, new ClassifierOptions { Precision = NetworkPrecision.Int8 });
        var metrics = new Dictionary<string, double>();
        var predictable = int8.ClassNames.Select(c => data.ClassNames.Contains(c)).ToArray();
        foreach (var split in new[] { DataSplit.PublicTest, DataSplit.PrivateTest })
        {
            var faces = data.Subset(split);
            if (faces.Count == 0) continue;
            if (!faces.ClassNames.SequenceEqual(int8.ClassNames)) throw new InvalidDataException($"{package}: classes {string.Join(", ", int8.ClassNames)} do not match the test data's");
            var crops = Enumerable.Range(0, faces.Count).Select(i => faces.Face(i).ToArray()).ToList();
            cancellationToken.ThrowIfCancellationRequested();
            var quantized = int8.PredictProbabilities(crops);
            cancellationToken.ThrowIfCancellationRequested();
            var reference = exact.PredictProbabilities(crops);
            var result = ClassificationMetrics.Compute(int8.ClassNames, predictable, faces.Labels, quantized);
            var name = split.ToString().ToLowerInvariant();
            metrics[$"{Int8Prefix}{name}_accuracy"] = Math.Round(result.Accuracy, 6);
            metrics[$"{Int8Prefix}{name}_macro_f1"] = Math.Round(result.MacroF1, 6);
            var same = quantized.Zip(reference).Count(p => ClassificationMetrics.ArgMax(p.First) == ClassificationMetrics.ArgMax(p.Second));
            metrics[$"{Int8Prefix}{name}_agreement"] = Math.Round((double)same / faces.Count, 6);
        }
        var (int8Time, floatTime) = TimeInTurn(int8, exact);
        metrics[$"{Int8Prefix}latency_ms_per_face"] = int8Time;
        metrics["onnxruntime_latency_ms_per_face"] = floatTime;
        return metrics;
    }

    /// <summary>Median milliseconds of one face through each classifier, the two called in turn so that a busy machine slows both alike.</summary>
    private static (double First, double Second) TimeInTurn(IFaceClassifier first, IFaceClassifier second, int runs = 300)
    {
        var one = OneTimedFace();
        var times = new[] { new double[runs], new double[runs] };
        IFaceClassifier[] classifiers = [first, second];
        for (var i = 0; i < 20; i++) foreach (var c in classifiers) c.PredictProbabilities(one);
        for (var i = 0; i < runs; i++)
        {
            for (var k = 0; k < 2; k++)
            {
                var watch = Stopwatch.StartNew();
                classifiers[k].PredictProbabilities(one);
                times[k][i] = watch.Elapsed.TotalMilliseconds;
            }
        }
        foreach (var t in times) Array.Sort(t);
        return (Math.Round(times[0][runs / 2], 3), Math.Round(times[1][runs / 2], 3));
    }

    /// <summary>The face latency is timed on: a fixed pattern, so that every timing sees the same input.</summary>
    private static IReadOnlyList<byte[]> OneTimedFace()
    {
        var face = new byte[FaceDataset.PixelsPerImage];
        for (var p = 0; p < face.Length; p++) face[p] = (byte)(p * 7 % 256);
        return [face];
    }
}
