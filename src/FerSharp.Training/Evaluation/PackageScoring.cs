using System.Globalization;

using FerSharp.Data;
using FerSharp.Inference;
using FerSharp.Models;

namespace FerSharp.Evaluation;

/// <summary>Where the test data of a package's figures comes from; any may be absent (its figures are then left out).</summary>
/// <param name="Csv">The original FER2013 CSV (<c>fer2013.csv.gz</c>).</param>
/// <param name="Images">The image-folder release (<c>fer2013-images.tar.gz</c>): the same faces, contrast-stretched and JPEG-compressed.</param>
/// <param name="FerPlus">The FER+ votes (<c>fer2013new.csv</c>), for 8-class packages.</param>
/// <param name="Scenes">A folder of labelled photos (<c>fer data scenes</c>) scored through detect, crop and classify.</param>
public sealed record TestData(string? Csv, string? Images = null, string? FerPlus = null, string? Scenes = null)
{
    /// <summary>The shared data's files beside <paramref name="csv"/> (or found in ../shared/data).</summary>
    public static TestData Beside(string? csv)
    {
        csv ??= Fer2013Dataset.FindSharedData();
        if (csv is null) return new TestData(Csv: null);
        var folder = Path.GetDirectoryName(Path.GetFullPath(csv))!;
        string? Sibling(string name) => File.Exists(Path.Combine(folder, name)) ? Path.Combine(folder, name) : null;
        return new TestData(csv, Sibling("fer2013-images.tar.gz"), Sibling("fer2013new.csv"));
    }
}

/// <summary>
/// Scores a package on every test set it has figures for, records them in its <c>model.json</c> and writes
/// its <see cref="ModelCard"/>: what <c>fer models ship</c> and <c>fer models score</c> do.
/// </summary>
public static class PackageScoring
{
    /// <summary>Recall below this is named in the card as something the model is bad at.</summary>
    public const double WeakRecall = 0.5;

    public static IReadOnlyDictionary<string, double> Score(string package, TestData data, Action<string>? log = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        log ??= _ => { };
        var metrics = new Dictionary<string, double>();
        var limits = new List<string>();
        using (var model = EmotionModel.Load(package))
        {
            var ferPlus = model.ClassNames.SequenceEqual(EmotionClasses.FerPlus);
            if (data.Csv is { } csv && !ferPlus)
            {
                log($"scoring on {csv} (PublicTest, PrivateTest)…");
                var faces = Fer2013Dataset.Load(csv, new DatasetLoadOptions { Splits = [DataSplit.PublicTest, DataSplit.PrivateTest] }, cancellationToken);
                Merge(metrics, TestSetMetrics.Measure(model, faces, cancellationToken: cancellationToken));
                if (data.Images is { } images)
                {
                    log($"scoring on {images} (PrivateTest, contrast-stretched)…");
                    var stretched = Fer2013Dataset.Load(images, new DatasetLoadOptions { Splits = [DataSplit.PrivateTest] }, cancellationToken);
                    Merge(metrics, TestSetMetrics.Measure(model, stretched, prefix: TestSetMetrics.ImageFolderPrefix, cancellationToken: cancellationToken));
                }
                limits.AddRange(WeakClasses(model, metrics, ""));
                if (model.Metadata.Int8 is not null)
                {
                    log("scoring the int8 network on ONNX Runtime…");
                    Merge(metrics, TestSetMetrics.MeasureInt8(package, faces, cancellationToken));
                }
            }
            if (data.Csv is { } plusCsv && ferPlus && data.FerPlus is { } votes)
            {
                foreach (var (mode, rule) in new[] { (FerPlusLabelMode.Majority, "majority"), (FerPlusLabelMode.Distribution, "plurality") })
                {
                    log($"scoring on the FER+ test set ({rule} rule)…");
                    var faces = Fer2013Dataset.Load(plusCsv, new DatasetLoadOptions { FerPlusLabels = votes, FerPlusMode = mode, Splits = [DataSplit.PrivateTest] }, cancellationToken);
                    Merge(metrics, TestSetMetrics.Measure(model, faces, prefix: $"{TestSetMetrics.FerPlusPrefix}{rule}_", cancellationToken: cancellationToken));
                }
                limits.AddRange(WeakClasses(model, metrics, "ferplus_majority_"));
            }
            log("timing one face at batch 1…");
            metrics["latency_ms_per_face"] = TestSetMetrics.MeasureLatency(model);
        }
        if (data.Scenes is { } scenes)
        {
            log($"scoring photos of {scenes} through detect, crop and classify…");
            using var recognizer = EmotionRecognizer.Load(package);
            var network = recognizer.Model is OnnxFaceClassifier { IsInt8: true } ? " with the int8 network" : "";
            var result = DetectedEvaluation.Evaluate(recognizer, DetectedEvaluation.ListPhotos(scenes, recognizer.Model.ClassNames), cancellationToken: cancellationToken);
            metrics["scenes_accuracy"] = Math.Round(result.Accuracy, 6);
            metrics["scenes_no_face"] = Math.Round((double)result.NoFace / result.Count, 6);
            var inv = CultureInfo.InvariantCulture;
            limits.Add(string.Create(inv, $"Detect, crop and classify on {result.Count:N0} photos of test faces pasted into scenes at 80-220 px (turned, relit, JPEG) or as tight crops (`fer data scenes`){network}: {result.Accuracy * 100:F2}% right, {result.NoFace * 100.0 / result.Count:F1}% without a face found; the crops alone score higher (table below)."));
        }
        using var shipped = EmotionModel.Load(package);
        shipped.UpdateMetadata(m => m with
        {
            Metrics = new Dictionary<string, double>(m.Metrics.Where(p => !IsTestFigure(p.Key)).Concat(metrics)),
        });
        shipped.Save(package, float16: shipped.Metadata.WeightsDtype == "float16");
        var weights = new FileInfo(Path.Combine(package, shipped.Metadata.WeightsFile)).Length;
        AtomicFile.WriteAllText(Path.Combine(package, ModelCard.FileName), ModelCard.Render(shipped.Metadata, weights, limits));
        return metrics;
    }

    /// <summary>Figures this scoring owns: older ones of the same kinds (on other data) are dropped, not kept beside the new.</summary>
    private static bool IsTestFigure(string key) =>
        key.StartsWith("publictest_", StringComparison.Ordinal) || key.StartsWith("privatetest_", StringComparison.Ordinal)
        || key.StartsWith(TestSetMetrics.ImageFolderPrefix, StringComparison.Ordinal) || key.StartsWith(TestSetMetrics.FerPlusPrefix, StringComparison.Ordinal)
        || key.StartsWith("scenes_", StringComparison.Ordinal) || key == "latency_ms_per_face"
        || key.StartsWith(TestSetMetrics.Int8Prefix, StringComparison.Ordinal) || key == "onnxruntime_latency_ms_per_face";

    private static IEnumerable<string> WeakClasses(EmotionModel model, Dictionary<string, double> metrics, string prefix)
    {
        var inv = CultureInfo.InvariantCulture;
        foreach (var c in model.ClassNames)
        {
            if (metrics.TryGetValue($"{prefix}privatetest_recall_{c}", out var recall) && recall < WeakRecall)
            {
                yield return string.Create(inv, $"Weak on {c}: {recall * 100:F1}% of {c} test faces are recognized as such.");
            }
        }
    }

    private static void Merge(Dictionary<string, double> into, Dictionary<string, double> from)
    {
        foreach (var (key, value) in from) into[key] = value;
    }
}
