using FerSharp.Data;
using FerSharp.Models;

namespace FerSharp.Evaluation;

/// <summary>
/// The headline numbers recorded in a shipped package's <c>model.json</c> (and quoted in the model card):
/// accuracy on PublicTest and PrivateTest, plain and with each test-time augmentation. Computed on the
/// shipped package itself, so a fresh <c>fer evaluate</c> reproduces them exactly.
/// </summary>
public static class TestSetMetrics
{
    public static string Key(DataSplit split, TtaMode tta) =>
        $"{split.ToString().ToLowerInvariant()}_accuracy{(tta == TtaMode.None ? "" : "_" + tta.ToString().ToLowerInvariant())}";

    public static Dictionary<string, double> Measure(EmotionModel model, FaceDataset data, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        var metrics = new Dictionary<string, double>();
        foreach (var split in new[] { DataSplit.PublicTest, DataSplit.PrivateTest })
        {
            var faces = data.Subset(split);
            if (faces.Count == 0) continue;
            foreach (var tta in Enum.GetValues<TtaMode>())
            {
                var result = Evaluator.Evaluate(model, faces, new EvaluationOptions { Tta = tta, CompareWithoutTta = false }, split.ToString(),
                    cancellationToken: cancellationToken);
                metrics[Key(split, tta)] = Math.Round(result.Metrics.Accuracy, 6);
                if (tta == TtaMode.None) metrics[$"{split.ToString().ToLowerInvariant()}_macro_f1"] = Math.Round(result.Metrics.MacroF1, 6);
            }
        }
        return metrics;
    }
}
