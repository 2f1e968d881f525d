namespace FerSharp.Evaluation;

public sealed record ClassMetrics(string Name, double Precision, double Recall, double F1, int Support, int Predicted, bool Predictable);

/// <summary>
/// Accuracy, per-class precision/recall/F1, macro and weighted F1, top-k accuracy, calibration error and
/// the confusion matrix (rows = true class, columns = predicted class) over one label space.
/// </summary>
public sealed record ClassificationMetrics
{
    public required IReadOnlyList<string> Classes { get; init; }
    public required int Count { get; init; }
    public required double Accuracy { get; init; }
    public required double MacroF1 { get; init; }
    public required double WeightedF1 { get; init; }
    public required IReadOnlyList<ClassMetrics> PerClass { get; init; }
    public required int[][] ConfusionMatrix { get; init; }
    public required IReadOnlyDictionary<int, double> TopKAccuracy { get; init; }
    public required double ExpectedCalibrationError { get; init; }

    /// <summary>Rows of the confusion matrix divided by their totals (a row with no samples stays zero).</summary>
    public double[][] RowNormalized() => ConfusionMatrix
        .Select(row => { var total = row.Sum(); return row.Select(v => total == 0 ? 0.0 : (double)v / total).ToArray(); })
        .ToArray();

    /// <param name="classes">The label space.</param>
    /// <param name="predictable">Per class, whether the model can output it.</param>
    /// <param name="truth">True class index per sample.</param>
    /// <param name="probabilities">Per sample, a probability for every class of the label space (0 for unpredictable ones).</param>
    /// <param name="calibrationBins">Confidence bins for the expected calibration error.</param>
    public static ClassificationMetrics Compute(IReadOnlyList<string> classes, IReadOnlyList<bool> predictable, IReadOnlyList<int> truth,
        IReadOnlyList<float[]> probabilities, int calibrationBins = 15)
    {
        ArgumentNullException.ThrowIfNull(classes);
        ArgumentNullException.ThrowIfNull(predictable);
        ArgumentNullException.ThrowIfNull(truth);
        ArgumentNullException.ThrowIfNull(probabilities);
        if (truth.Count != probabilities.Count) throw new ArgumentException("one probability row per sample is needed");
        var k = classes.Count;
        var n = truth.Count;
        var confusion = new int[k][];
        for (var i = 0; i < k; i++) confusion[i] = new int[k];
        var predictions = new int[n];
        var topK = new Dictionary<int, double>();
        var topHits = new int[k + 1];
        var binConfidence = new double[calibrationBins];
        var binCorrect = new int[calibrationBins];
        var binCount = new int[calibrationBins];
        for (var s = 0; s < n; s++)
        {
            var p = probabilities[s];
            if (p.Length != k) throw new ArgumentException($"sample {s} has {p.Length} probabilities; expected {k}");
            var predicted = ArgMax(p);
            predictions[s] = predicted;
            confusion[truth[s]][predicted]++;
            var rank = p.Count(v => v > p[truth[s]]) + 1; // 1 = the true class scored highest
            for (var r = rank; r <= k; r++) topHits[r]++;
            var confidence = p[predicted];
            var bin = Math.Min(calibrationBins - 1, (int)(confidence * calibrationBins));
            binConfidence[bin] += confidence;
            binCount[bin]++;
            if (predicted == truth[s]) binCorrect[bin]++;
        }
        foreach (var kk in new[] { 1, 2, 3 }.Where(v => v <= k))
        {
            topK[kk] = n == 0 ? 0 : (double)topHits[kk] / n;
        }
        var ece = 0.0;
        for (var b = 0; b < calibrationBins; b++)
        {
            if (binCount[b] == 0) continue;
            ece += (double)binCount[b] / n * Math.Abs((double)binCorrect[b] / binCount[b] - binConfidence[b] / binCount[b]);
        }

        var perClass = new List<ClassMetrics>(k);
        for (var c = 0; c < k; c++)
        {
            var tp = confusion[c][c];
            var support = confusion[c].Sum();
            var predictedCount = Enumerable.Range(0, k).Sum(r => confusion[r][c]);
            var precision = predictedCount == 0 ? 0 : (double)tp / predictedCount;
            var recall = support == 0 ? 0 : (double)tp / support;
            var f1 = precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
            perClass.Add(new ClassMetrics(classes[c], precision, recall, f1, support, predictedCount, predictable[c]));
        }
        // Macro F1 averages over classes that occur in the data (a class with no samples has no defined recall).
        var present = perClass.Where(c => c.Support > 0).ToList();
        var correct = Enumerable.Range(0, k).Sum(c => confusion[c][c]);
        return new ClassificationMetrics
        {
            Classes = classes,
            Count = n,
            Accuracy = n == 0 ? 0 : (double)correct / n,
            MacroF1 = present.Count == 0 ? 0 : present.Average(c => c.F1),
            WeightedF1 = n == 0 ? 0 : present.Sum(c => c.F1 * c.Support) / n,
            PerClass = perClass,
            ConfusionMatrix = confusion,
            TopKAccuracy = topK,
            ExpectedCalibrationError = ece,
        };
    }

    /// <summary>The predicted class: the most probable, the first of equals (as every report counts it).</summary>
    internal static int ArgMax(float[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }
        return best;
    }
}
