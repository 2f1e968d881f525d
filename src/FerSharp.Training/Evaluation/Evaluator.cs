using System.Diagnostics;

using FerSharp.Data;
using FerSharp.Models;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Evaluation;

public sealed record EvaluationOptions
{
    public TtaMode Tta { get; init; } = TtaMode.None;
    public int BatchSize { get; init; } = 64; // 256 was up to 2x slower on our 2-core CPU
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
    /// <summary>What ran the network(s): OpenCv or TorchSharp (joined with '+' for an ensemble that mixes them).</summary>
    public string Engine { get; init; } = "";
    /// <summary>Per face, probabilities over <see cref="ClassificationMetrics.Classes"/>.</summary>
    public required IReadOnlyList<float[]> Probabilities { get; init; }
    public required IReadOnlyList<int> Truth { get; init; }
    public required FaceDataset Data { get; init; }
    /// <summary>What was done to reconcile the model's classes with the data's.</summary>
    public required IReadOnlyList<string> Notes { get; init; }
    /// <summary>Every model scored averages each face with its mirror already (so flip TTA adds nothing).</summary>
    public bool FlipAveraging { get; init; }
}

/// <summary>Scores a model on labelled faces, mapping the data's classes to the model's by name.</summary>
public static class Evaluator
{
    public static EvaluationResult Evaluate(EmotionModel model, FaceDataset data, EvaluationOptions? options = null,
        string split = "all", IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Evaluate([model], data, options, split, progress, cancellationToken);
    }

    /// <summary>
    /// Scores an ensemble: each face's probabilities are the mean of the models' (each with its own TTA views
    /// and input normalization). The models must predict the same classes in the same order. With one model
    /// this is <see cref="Evaluate(EmotionModel, FaceDataset, EvaluationOptions?, string, IProgress{int}?, CancellationToken)"/>.
    /// </summary>
    public static EvaluationResult Evaluate(IReadOnlyList<EmotionModel> models, FaceDataset data, EvaluationOptions? options = null,
        string split = "all", IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentNullException.ThrowIfNull(data);
        if (models.Count == 0) throw new ArgumentException("no model to evaluate", nameof(models));
        var first = models[0];
        foreach (var other in models.Skip(1))
        {
            if (!other.ClassNames.SequenceEqual(first.ClassNames))
            {
                throw new ArgumentException($"an ensemble's models must predict the same classes: {first.Metadata.Name} has {string.Join(",", first.ClassNames)}, {other.Metadata.Name} has {string.Join(",", other.ClassNames)}");
            }
        }
        options ??= new EvaluationOptions();
        if (data.Count == 0) throw new ArgumentException("no faces to evaluate (is the split empty?)");

        var (classes, predictable, truth, notes) = MapClasses(first.ClassNames, data);
        notes.AddRange(TrainingDataNotes(models, data));
        var watch = Stopwatch.StartNew();
        var probabilities = PredictMean(models, data, options.Tta, options.BatchSize, classes.Count, progress, cancellationToken);
        watch.Stop();
        var metrics = ClassificationMetrics.Compute(classes, predictable, truth, probabilities);
        ClassificationMetrics? plain = null;
        if (options.Tta != TtaMode.None && options.CompareWithoutTta)
        {
            plain = ClassificationMetrics.Compute(classes, predictable, truth,
                PredictMean(models, data, TtaMode.None, options.BatchSize, classes.Count, null, cancellationToken));
        }
        return new EvaluationResult
        {
            ModelName = string.Join("+", models.Select(m => m.Metadata.Name)),
            Split = split,
            Tta = options.Tta,
            Metrics = metrics,
            WithoutTta = plain,
            Seconds = watch.Elapsed.TotalSeconds,
            ImagesPerSecond = data.Count / Math.Max(1e-9, watch.Elapsed.TotalSeconds),
            Engine = string.Join("+", models.Select(m => m.Engine).Distinct()),
            FlipAveraging = models.All(m => m.Metadata.FlipAveraging),
            Probabilities = probabilities,
            Truth = truth,
            Data = data,
            Notes = notes,
        };
    }

    /// <summary>A note for each model that trained on faces of a split in <paramref name="data"/>: no test result there.</summary>
    public static IEnumerable<string> TrainingDataNotes(IReadOnlyList<EmotionModel> models, FaceDataset data)
    {
        var splits = data.SplitsPresent;
        foreach (var model in models)
        {
            var seen = splits.Where(model.Metadata.TrainedOn).ToList();
            if (seen.Count > 0)
            {
                yield return $"{model.Metadata.Name} was trained on {string.Join(" and ", seen)} faces: its accuracy on them is not a test result";
            }
        }
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

    /// <summary>The models' probabilities averaged per face; progress counts faces over all models.</summary>
    private static float[][] PredictMean(IReadOnlyList<EmotionModel> models, FaceDataset data, TtaMode tta, int batchSize, int spaceSize,
        IProgress<int>? progress, CancellationToken cancellationToken)
    {
        float[][]? sum = null;
        for (var m = 0; m < models.Count; m++)
        {
            var scaled = progress == null ? null : new ShareOfProgress(progress, m * data.Count, models.Count);
            var p = Predict(models[m], data, tta, batchSize, spaceSize, scaled, cancellationToken);
            if (sum == null)
            {
                sum = p;
                continue;
            }
            for (var i = 0; i < p.Length; i++)
            {
                for (var c = 0; c < spaceSize; c++) sum[i][c] += p[i][c];
            }
        }
        if (models.Count > 1)
        {
            foreach (var row in sum!)
            {
                for (var c = 0; c < spaceSize; c++) row[c] /= models.Count;
            }
        }
        return sum!;
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
            var mean = TestTimeAugmentation.PredictProbabilities(model, batch, tta).contiguous();
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

    /// <summary>
    /// Keeps an ensemble's progress in faces (0 to the data's count) while each model walks the data once:
    /// <paramref name="before"/> faces were scored by the earlier models.
    /// </summary>
    private sealed class ShareOfProgress(IProgress<int> whole, int before, int models) : IProgress<int>
    {
        public void Report(int value) => whole.Report((int)(((long)before + value) / models));
    }
}
