using System.Diagnostics;

using FerSharp.Data;
using FerSharp.Models;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Evaluation;

public sealed record EvaluationOptions
{
    public TtaMode Tta { get; init; } = TtaMode.None;
    public int BatchSize { get; init; } = 64; // 256 was up to 2x slower on our 2-core CPU (docs/DECISIONS.md, "CPU speed")
    /// <summary>With TTA, also score the plain model so the report can show the gain.</summary>
    public bool CompareWithoutTta { get; init; } = true;
}

/// <summary>The outcome of an evaluation: metrics plus what is needed to draw the report.</summary>
public sealed class EvaluationResult
{
    public required string ModelName { get; init; }
    public required string Split { get; init; }
    public required TtaMode Tta { get; init; }
    public required ClassificationMetrics Metrics { get; init; }
    public ClassificationMetrics? WithoutTta { get; init; }
    public required double Seconds { get; init; }
    public required double ImagesPerSecond { get; init; }
    /// <summary>Per face, probabilities over <see cref="ClassificationMetrics.Classes"/>.</summary>
    public required IReadOnlyList<float[]> Probabilities { get; init; }
    public required IReadOnlyList<int> Truth { get; init; }
    public required FaceDataset Data { get; init; }
    /// <summary>What was done to reconcile the model's classes with the data's.</summary>
    public required IReadOnlyList<string> Notes { get; init; }
}

/// <summary>Scores a model on labelled faces, mapping the data's classes to the model's by name.</summary>
public static class Evaluator
{
    public static EvaluationResult Evaluate(EmotionModel model, FaceDataset data, EvaluationOptions? options = null,
        string split = "all", IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        options ??= new EvaluationOptions();
        if (data.Count == 0) throw new ArgumentException("no faces to evaluate (is the split empty?)");

        var (classes, predictable, truth, notes) = MapClasses(model.ClassNames, data);
        var watch = Stopwatch.StartNew();
        var probabilities = Predict(model, data, options.Tta, options.BatchSize, classes.Count, progress, cancellationToken);
        watch.Stop();
        var metrics = ClassificationMetrics.Compute(classes, predictable, truth, probabilities);
        ClassificationMetrics? plain = null;
        if (options.Tta != TtaMode.None && options.CompareWithoutTta)
        {
            plain = ClassificationMetrics.Compute(classes, predictable, truth,
                Predict(model, data, TtaMode.None, options.BatchSize, classes.Count, null, cancellationToken));
        }
        return new EvaluationResult
        {
            ModelName = model.Metadata.Name,
            Split = split,
            Tta = options.Tta,
            Metrics = metrics,
            WithoutTta = plain,
            Seconds = watch.Elapsed.TotalSeconds,
            ImagesPerSecond = data.Count / Math.Max(1e-9, watch.Elapsed.TotalSeconds),
            Probabilities = probabilities,
            Truth = truth,
            Data = data,
            Notes = notes,
        };
    }

    /// <summary>
    /// Label space = the model's classes, then any data class the model lacks (which it can never get right).
    /// </summary>
    internal static (List<string> Classes, List<bool> Predictable, int[] Truth, List<string> Notes) MapClasses(
        IReadOnlyList<string> modelClasses, FaceDataset data)
    {
        var classes = modelClasses.ToList();
        var predictable = modelClasses.Select(_ => true).ToList();
        var notes = new List<string>();
        var counts = data.CountsByClass();
        var dataToSpace = new int[data.ClassCount];
        for (var c = 0; c < data.ClassCount; c++)
        {
            var name = data.ClassNames[c];
            var index = classes.FindIndex(m => string.Equals(EmotionClasses.Canonical(m) ?? m, EmotionClasses.Canonical(name) ?? name, StringComparison.OrdinalIgnoreCase));
            if (index < 0)
            {
                classes.Add(name);
                predictable.Add(false);
                index = classes.Count - 1;
                if (counts[c] > 0)
                {
                    notes.Add($"data class '{name}' is not one the model predicts: its {counts[c]} faces count as errors");
                }
            }
            dataToSpace[c] = index;
        }
        if (!data.ClassNames.SequenceEqual(modelClasses))
        {
            notes.Insert(0, $"data classes [{string.Join(", ", data.ClassNames)}] mapped by name to model classes [{string.Join(", ", modelClasses)}]");
        }
        foreach (var m in modelClasses)
        {
            var present = Enumerable.Range(0, data.ClassCount).Any(c => dataToSpace[c] == classes.IndexOf(m) && counts[c] > 0);
            if (!present)
            {
                notes.Add($"model class '{m}' has no faces in this data (its recall is undefined; predictions of it are errors)");
            }
        }
        return (classes, predictable, data.Labels.Select(l => dataToSpace[l]).ToArray(), notes);
    }

    /// <summary>Probabilities per face over a label space of <paramref name="spaceSize"/> classes (model classes first).</summary>
    public static float[][] Predict(EmotionModel model, FaceDataset data, TtaMode tta, int batchSize, int spaceSize,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        var modelClasses = model.ClassNames.Count;
        var result = new float[data.Count][];
        using var all = data.ToTensor();
        for (var start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var n = Math.Min(batchSize, data.Count - start);
            var batch = all.narrow(0, start, n);
            Tensor? sum = null;
            var views = TestTimeAugmentation.Views(batch, tta, withoutMirrors: model.Metadata.FlipAveraging);
            foreach (var view in views)
            {
                var p = model.PredictProbabilities(view);
                sum = sum is null ? p : sum.AddTensorInPlace(p);
            }
            var mean = sum!.DivScalar(views.Count).contiguous();
            var values = mean.data<float>().ToArray();
            for (var i = 0; i < n; i++)
            {
                var row = new float[spaceSize];
                Array.Copy(values, i * modelClasses, row, 0, modelClasses);
                result[start + i] = row;
            }
            progress?.Report(start + n);
        }
        return result;
    }
}
