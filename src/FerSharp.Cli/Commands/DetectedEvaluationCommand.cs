using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;

using FerSharp.Evaluation;
using FerSharp.Inference;
using FerSharp.Models;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer evaluate --detect</c>: a model scored on ordinary labelled photos through detect, crop and classify.</summary>
internal static class DetectedEvaluationCommand
{
    public static int Run(ParseResult parse, string[]? models, string? data, string? reportFolder, RecognizerOptions settings,
        InferenceEngine engine, NetworkPrecision precision, bool json, CancellationToken cancellationToken)
    {
        if (models is { Length: > 1 }) throw new UserFacingException("--detect: give one --model (an ensemble is scored on FER2013 faces only)");
        if (data is null) throw new UserFacingException("--detect: pass --data <folder of <class>/<image>>");
        if (File.Exists(data)) throw new UserFacingException($"--detect: {data} is a file; expected a folder of <class>/<image>");
        settings.Validate();
        var modelPath = models is { Length: 1 } ? models[0] : ShippedModels.DefaultPath();
        var classes = ModelPackage.ReadMetadata(modelPath).ClassNames;
        var photos = DetectedEvaluation.ListPhotos(data, classes);
        using var recognizer = EngineOption.LoadRecognizer(modelPath, settings, engine, precision);

        DetectedEvaluationResult? result = null;
        void Evaluate(IProgress<int>? progress) => result = DetectedEvaluation.Evaluate(recognizer, photos, progress, cancellationToken);
        if (json || !AnsiConsole.Profile.Capabilities.Interactive)
        {
            Evaluate(null);
        }
        else
        {
            AnsiConsole.Progress().Start(ctx =>
            {
                var task = ctx.AddTask($"detect, crop and classify {photos.Count:N0} photos", maxValue: photos.Count);
                Evaluate(new SyncProgress<int>(n => task.Value = n));
            });
        }
        var evaluated = result!;
        var folder = reportFolder ?? Path.Combine("reports", $"{evaluated.ModelName}-detect-{Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(data)))}");
        Directory.CreateDirectory(folder);
        var metrics = MetricsJson(evaluated, modelPath, data, RecognitionOptions.Describe(recognizer));
        AtomicFile.WriteAllText(Path.Combine(folder, "metrics.json"), metrics);
        AtomicFile.WriteAllText(Path.Combine(folder, "predictions.csv"), PredictionsCsv(evaluated));
        if (json)
        {
            Console.WriteLine(metrics);
            return CliRunner.ExitOk;
        }
        PrintSummary(evaluated, RecognitionOptions.Describe(recognizer));
        AnsiConsole.MarkupLineInterpolated($"report: [bold]{folder}[/] (metrics.json, predictions.csv)");
        return CliRunner.ExitOk;
    }

    private static void PrintSummary(DetectedEvaluationResult r, string how)
    {
        var summary = new Table().Border(TableBorder.Rounded).Title($"{r.ModelName} on {r.Count:N0} photos ({how})");
        summary.AddColumn("metric");
        summary.AddColumn(new TableColumn("value").RightAligned());
        summary.AddRow("accuracy (no face = wrong)", $"[bold]{r.Accuracy:P2}[/]");
        summary.AddRow("accuracy on photos with a face", $"{r.AccuracyOnFaces:P2} of {r.Classified:N0}");
        summary.AddRow("photos with no face found", $"{r.NoFace:N0} ({(r.Count == 0 ? 0 : (double)r.NoFace / r.Count):P1})");
        if (r.Unreadable > 0) summary.AddRow("unreadable photos (counted wrong)", $"{r.Unreadable:N0}");
        summary.AddRow("faces found only with a border added", $"{r.Photos.Count(p => p.Predicted is not null && p.Finding == FaceFinding.DetectedWithBorder):N0}");
        if (!r.Classes.SequenceEqual(r.ModelClasses))
        {
            summary.AddRow("answers limited to the data's classes", $"{string.Join(", ", r.Classes)} (over all {r.ModelClasses.Count} classes: {r.AccuracyAnyClass:P2})");
        }
        AnsiConsole.Write(summary);
        var perClass = new Table().Border(TableBorder.Rounded).Title("per class");
        foreach (var h in new[] { "class", "photos", "recall", "no face" }) perClass.AddColumn(h == "class" ? new TableColumn(h) : new TableColumn(h).RightAligned());
        foreach (var (name, count, right, noFace) in r.PerClass)
        {
            perClass.AddRow(name, $"{count:N0}", count == 0 ? "-" : $"{(double)right / count:P1}", $"{noFace:N0}");
        }
        AnsiConsole.Write(perClass);
        var confusion = new Table().Border(TableBorder.Rounded).Title("confusion (rows: true, columns: predicted; last: no answer)");
        confusion.AddColumn("");
        foreach (var c in r.Classes) confusion.AddColumn(new TableColumn(c).RightAligned());
        confusion.AddColumn(new TableColumn("no face").RightAligned());
        var matrix = r.ConfusionWithNoFace();
        for (var i = 0; i < r.Classes.Count; i++)
        {
            confusion.AddRow([r.Classes[i], .. matrix[i].Select(v => v.ToString(CultureInfo.InvariantCulture))]);
        }
        AnsiConsole.Write(confusion);
    }

    internal static string MetricsJson(DetectedEvaluationResult r, string modelPath, string data, string how) =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["model"] = r.ModelName,
            ["model_path"] = modelPath,
            ["data"] = data,
            ["how"] = $"detect, crop and classify: {how}; the largest face of a photo answers",
            ["count"] = r.Count,
            ["accuracy"] = r.Accuracy,
            ["accuracy_rule"] = "right answers over all photos; a photo with no face found or unreadable counts as wrong",
            ["accuracy_on_faces"] = r.AccuracyOnFaces,
            ["accuracy_any_class"] = r.AccuracyAnyClass,
            ["classes"] = r.Classes,
            ["model_classes"] = r.ModelClasses,
            ["no_face"] = r.NoFace,
            ["unreadable"] = r.Unreadable,
            ["found_with_border"] = r.Photos.Count(p => p.Predicted is not null && p.Finding == FaceFinding.DetectedWithBorder),
            ["per_class"] = r.PerClass.ToDictionary(c => c.Class, c => new Dictionary<string, object>
            {
                ["photos"] = c.Photos,
                ["recall"] = c.Photos == 0 ? 0 : (double)c.Right / c.Photos,
                ["no_face"] = c.NoFace,
            }),
            ["confusion_with_no_face"] = r.ConfusionWithNoFace(),
        }, new JsonSerializerOptions { WriteIndented = true });

    private static string PredictionsCsv(DetectedEvaluationResult r)
    {
        var csv = new StringBuilder("path,true,predicted,faces,found,error\n");
        foreach (var p in r.Photos)
        {
            csv.Append(Quote(p.Photo.Path)).Append(',').Append(p.Photo.TrueClass).Append(',').Append(p.Predicted ?? "")
                .Append(',').Append(p.FacesFound.ToString(CultureInfo.InvariantCulture)).Append(',')
                .Append(p.Predicted is null ? "" : p.Finding.ToString()).Append(',').Append(Quote(p.Error ?? "")).Append('\n');
        }
        return csv.ToString();
    }

    private static string Quote(string value) => value.Contains(',') || value.Contains('"') ? $"\"{value.Replace("\"", "\"\"")}\"" : value;
}
