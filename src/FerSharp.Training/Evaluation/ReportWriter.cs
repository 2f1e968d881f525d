using System.Globalization;
using System.Text;
using System.Text.Json;

using FerSharp.Models;

namespace FerSharp.Evaluation;

/// <summary>Writes an evaluation as a report folder: metrics.json, predictions.csv, report.md and PNG pictures.</summary>
public static class ReportWriter
{
    public const string MetricsFile = "metrics.json";

    /// <summary>One row per face, in the split's order: its label, the predicted class and every probability.</summary>
    public const string PredictionsFile = "predictions.csv";

    public static void Write(EvaluationResult result, string folder, string? modelPath = null, string? dataPath = null)
    {
        ArgumentNullException.ThrowIfNull(result);
        Directory.CreateDirectory(folder);
        var title = $"{result.ModelName} on {result.Split}";
        AtomicFile.WriteAllBytes(Path.Combine(folder, "confusion_matrix.png"), ReportPlots.ConfusionMatrix(result.Metrics, $"{title}: confusion matrix"));
        AtomicFile.WriteAllBytes(Path.Combine(folder, "per_class.png"), ReportPlots.PerClass(result.Metrics, $"{title}: per-class metrics"));
        var mistakes = ReportPlots.ConfidentMistakes(result);
        if (mistakes != null)
        {
            AtomicFile.WriteAllBytes(Path.Combine(folder, "mistakes.png"), mistakes);
        }
        var curves = FindCurves(modelPath);
        if (curves != null)
        {
            AtomicFile.WriteAllBytes(Path.Combine(folder, "curves.png"), File.ReadAllBytes(curves));
        }
        AtomicFile.WriteAllText(Path.Combine(folder, PredictionsFile), PredictionsCsv(result));
        AtomicFile.WriteAllText(Path.Combine(folder, MetricsFile), MetricsJson(result, modelPath, dataPath));
        AtomicFile.WriteAllText(Path.Combine(folder, "report.md"), Markdown(result, mistakes != null, curves != null, modelPath, dataPath));
    }

    /// <summary>The predicted class of each face: the most probable one, as the metrics count it.</summary>
    public static int[] PredictedClasses(EvaluationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return result.Probabilities.Select(ClassificationMetrics.ArgMax).ToArray();
    }

    private static string PredictionsCsv(EvaluationResult result)
    {
        var classes = result.Metrics.Classes;
        var predicted = PredictedClasses(result);
        var csv = new StringBuilder();
        // face: the face's index in the evaluated data; origin: where it came from (CSV line, or image file).
        csv.Append("face,origin,truth,predicted");
        foreach (var c in classes) csv.Append(",p_").Append(c);
        csv.Append('\n');
        for (var i = 0; i < predicted.Length; i++)
        {
            var origin = result.Data.Origins is { } origins ? origins[i] : "";
            csv.Append(i.ToString(CultureInfo.InvariantCulture)).Append(',').Append(Csv(origin)).Append(',').Append(classes[result.Truth[i]]).Append(',').Append(classes[predicted[i]]);
            foreach (var p in result.Probabilities[i]) csv.Append(',').Append(p.ToString("0.######", CultureInfo.InvariantCulture));
            csv.Append('\n');
        }
        return csv.ToString();
    }

    private static string[] SplitCsv(string line)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { field.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else field.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == ',') { fields.Add(field.ToString()); field.Clear(); }
            else field.Append(c);
        }
        fields.Add(field.ToString());
        return [.. fields];
    }

    private static string Csv(string value) =>
        value.IndexOfAny([',', '"', '\n']) >= 0 ? $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : value;

    /// <summary>
    /// Reads a report's <see cref="PredictionsFile"/> back: the class names and, per face, the label and the
    /// predicted class as indices into them. Null when the report has none (reports made before it was written).
    /// </summary>
    public static (IReadOnlyList<string> Classes, int[] Truth, int[] Predicted)? ReadPredictions(string folder)
    {
        var path = Path.Combine(folder, PredictionsFile);
        if (!File.Exists(path)) return null;
        using var reader = new StreamReader(path);
        var header = reader.ReadLine()?.Split(',') ?? throw new InvalidDataException($"{path}: empty file");
        // Reports before the origin column have face,truth,predicted,p_…
        var skip = header.Length > 1 && header[1] == "origin" ? 1 : 0;
        if (header.Length < 4 + skip || header[0] != "face" || header[1 + skip] != "truth" || header[2 + skip] != "predicted" || !header.Skip(3 + skip).All(h => h.StartsWith("p_", StringComparison.Ordinal)))
        {
            throw new InvalidDataException($"{path}, line 1: expected the header face,origin,truth,predicted,p_<class>…");
        }
        var classes = header.Skip(3 + skip).Select(h => h[2..]).ToArray();
        var truth = new List<int>();
        var predicted = new List<int>();
        var lineNumber = 1;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0) continue;
            var fields = SplitCsv(line);
            int ClassOf(int field, string name)
            {
                var index = fields.Length == header.Length ? Array.IndexOf(classes, fields[field]) : -1;
                return index >= 0 ? index : throw new InvalidDataException($"{path}, line {lineNumber}, field '{name}': '{(field < fields.Length ? fields[field] : "")}' is not one of {string.Join(",", classes)} (or the row has {fields.Length} fields, not {header.Length})");
            }
            truth.Add(ClassOf(1 + skip, "truth"));
            predicted.Add(ClassOf(2 + skip, "predicted"));
        }
        return (classes, truth.ToArray(), predicted.ToArray());
    }

    /// <summary>
    /// The training curves of the package itself: <c>runs/x/model</c> has them one level up, in its run folder.
    /// A shipped package (under <c>models/</c>) has none of its own, and the folder above it holds other packages,
    /// so nothing is taken from there.
    /// </summary>
    private static string? FindCurves(string? modelPath)
    {
        if (modelPath == null) return null;
        var folder = Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        var own = Path.Combine(folder, "curves.png");
        if (File.Exists(own)) return own;
        var run = Path.GetFullPath(Path.Combine(folder, ".."));
        return File.Exists(Path.Combine(run, "curves.png")) && File.Exists(Path.Combine(run, "config.json")) ? Path.Combine(run, "curves.png") : null;
    }

    public static string MetricsJson(EvaluationResult result, string? modelPath, string? dataPath)
    {
        ArgumentNullException.ThrowIfNull(result);
        var m = result.Metrics;
        var doc = new Dictionary<string, object?>
        {
            ["model"] = result.ModelName,
            ["model_path"] = modelPath,
            ["data"] = dataPath,
            ["split"] = result.Split,
            ["tta"] = result.Tta.ToString().ToLowerInvariant(),
            ["count"] = m.Count,
            ["accuracy"] = m.Accuracy,
            ["macro_f1"] = m.MacroF1,
            ["weighted_f1"] = m.WeightedF1,
            ["top_k_accuracy"] = m.TopKAccuracy.ToDictionary(kv => kv.Key.ToString(CultureInfo.InvariantCulture), kv => kv.Value),
            ["expected_calibration_error"] = m.ExpectedCalibrationError,
            ["classes"] = m.Classes,
            ["per_class"] = m.PerClass.ToDictionary(c => c.Name, c => new
            {
                precision = c.Precision,
                recall = c.Recall,
                f1 = c.F1,
                support = c.Support,
                predicted = c.Predicted,
                predictable = c.Predictable,
            }),
            ["confusion_matrix"] = m.ConfusionMatrix,
            ["confusion_matrix_normalized"] = m.RowNormalized(),
            ["without_tta"] = result.WithoutTta is { } plain ? new { accuracy = plain.Accuracy, macro_f1 = plain.MacroF1 } : null,
            ["images_per_second"] = Math.Round(result.ImagesPerSecond, 1),
            ["engine"] = result.Engine,
            ["seconds"] = Math.Round(result.Seconds, 3),
            ["notes"] = result.Notes,
            ["fersharp_version"] = FerSharpInfo.Version,
            ["created"] = DateTimeOffset.UtcNow,
        };
        return JsonSerializer.Serialize(doc, ModelMetadata.JsonOptions);
    }

    private static string Markdown(EvaluationResult result, bool hasMistakes, bool hasCurves, string? modelPath, string? dataPath)
    {
        var m = result.Metrics;
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(inv, $"# Evaluation: {result.ModelName} on {result.Split}");
        sb.AppendLine();
        sb.AppendLine(inv, $"Model `{modelPath ?? result.ModelName}`, data `{dataPath ?? "(in memory)"}`, {m.Count:N0} faces, test-time augmentation: {result.Tta.ToString().ToLowerInvariant()}. FerSharp {FerSharpInfo.Version}, {DateTime.UtcNow:yyyy-MM-dd}.");
        sb.AppendLine();
        sb.AppendLine("| metric | value |");
        sb.AppendLine("|---|---:|");
        sb.AppendLine(inv, $"| accuracy | **{m.Accuracy:P2}** |");
        if (result.WithoutTta is { } plain)
        {
            sb.AppendLine(inv, $"| accuracy without TTA | {plain.Accuracy:P2} |");
            sb.AppendLine(inv, $"| TTA gain | {(m.Accuracy - plain.Accuracy) * 100:+0.00;-0.00} points |");
        }
        sb.AppendLine(inv, $"| macro F1 | {m.MacroF1:P2} |");
        sb.AppendLine(inv, $"| weighted F1 | {m.WeightedF1:P2} |");
        foreach (var (k, v) in m.TopKAccuracy.Where(kv => kv.Key > 1)) sb.AppendLine(inv, $"| top-{k} accuracy | {v:P2} |");
        sb.AppendLine(inv, $"| expected calibration error | {m.ExpectedCalibrationError:F4} |");
        sb.AppendLine(inv, $"| throughput | {result.ImagesPerSecond:N0} faces/s ({result.Engine} engine) |");
        sb.AppendLine();
        if (result.Notes.Count > 0)
        {
            foreach (var note in result.Notes) sb.AppendLine(inv, $"> {note}");
            sb.AppendLine();
        }
        sb.AppendLine("## Per class");
        sb.AppendLine();
        sb.AppendLine("| class | precision | recall | F1 | support |");
        sb.AppendLine("|---|---:|---:|---:|---:|");
        foreach (var c in m.PerClass)
        {
            sb.AppendLine(inv, $"| {c.Name}{(c.Predictable ? "" : " (not predictable)")} | {c.Precision:P1} | {c.Recall:P1} | {c.F1:P1} | {c.Support} |");
        }
        sb.AppendLine();
        sb.AppendLine("![per-class metrics](per_class.png)");
        sb.AppendLine();
        sb.AppendLine("## Confusion matrix");
        sb.AppendLine();
        sb.AppendLine("Rows are the true class, columns the predicted class.");
        sb.AppendLine();
        sb.AppendLine("| true \\ predicted | " + string.Join(" | ", m.Classes) + " |");
        sb.AppendLine("|---|" + string.Concat(m.Classes.Select(_ => "---:|")));
        for (var r = 0; r < m.Classes.Count; r++)
        {
            sb.AppendLine(inv, $"| **{m.Classes[r]}** | {string.Join(" | ", m.ConfusionMatrix[r])} |");
        }
        sb.AppendLine();
        sb.AppendLine("![confusion matrix](confusion_matrix.png)");
        sb.AppendLine();
        if (hasMistakes)
        {
            sb.AppendLine("## Most confident mistakes");
            sb.AppendLine();
            sb.AppendLine("![most confident mistakes](mistakes.png)");
            sb.AppendLine();
        }
        if (hasCurves)
        {
            sb.AppendLine("## Training curves");
            sb.AppendLine();
            sb.AppendLine("![training curves](curves.png)");
            sb.AppendLine();
        }
        return sb.ToString();
    }
}
