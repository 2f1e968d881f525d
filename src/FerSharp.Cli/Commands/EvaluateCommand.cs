using System.CommandLine;
using System.Text.Json;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer evaluate</c> and <c>fer compare</c>.</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var model = new Option<string[]>("--model", "-m") { Description = "Model package folder (default: the shipped model). Repeat it to score an ensemble that averages the models' probabilities." };
        var data = new Option<string?>("--data", "-d") { Description = "fer2013.csv(.gz), image folder or tar(.gz). Default: ../shared/data/fer2013/fer2013.csv.gz." };
        var split = new Option<string>("--split") { Description = "Split to score: PrivateTest, PublicTest, Training or all.", DefaultValueFactory = _ => "PrivateTest" };
        var tta = new Option<TtaMode>("--tta") { Description = "Test-time augmentation: None, Flip or Crops (10 views). The gain over None is reported.", DefaultValueFactory = _ => TtaMode.None };
        var outDir = new Option<string?>("--out", "-o") { Description = "Report folder (default: reports/<model>-<split>)." };
        var json = new Option<bool>("--json") { Description = "Print metrics.json to stdout instead of the tables." };
        var overwrite = new Option<bool>("--overwrite") { Description = "Let --out replace the report in a folder that already holds one (the default folder under reports/ is always replaced)." };
        var engine = EngineOption.CreateTorch();
        var precision = EngineOption.CreatePrecision();
        precision.Description = "With --detect: " + precision.Description;
        var detect = new Option<bool>("--detect") { Description = "--data is a folder of ordinary labelled photos, <class>/<image>, faces not cropped: each goes through detect, crop and classify as in 'fer predict' (the largest face answers; a photo without a face counts as wrong). Takes --margin, --detector and --max-look." };
        var recognition = new RecognitionOptions();
        var dataOptions = new DatasetOptions();
        var command = new Command("evaluate", "Score a model: accuracy, per-class precision/recall/F1, confusion matrix, calibration; writes a report folder with PNGs.")
        {
            model, data, split, tta, outDir, overwrite, json, engine, precision, detect,
        };
        command.Options.Add(dataOptions.SkipBadRows);
        command.Options.Add(dataOptions.FerPlus);
        command.Options.Add(dataOptions.FerPlusMode);
        recognition.AddDetectionTo(command);
        command.SetAction((parse, ct) =>
        {
            var reportFolder = OptionRules.FolderToWrite(parse.GetValue(outDir), "--out");
            if (reportFolder is not null && Directory.Exists(reportFolder) && Directory.EnumerateFileSystemEntries(reportFolder).Any() && !parse.GetValue(overwrite))
            {
                throw new UserFacingException($"--out: {reportFolder} already holds files; pass --overwrite to replace its report, or choose a new folder");
            }
            if (parse.GetValue(detect))
            {
                return Task.FromResult(DetectedEvaluationCommand.Run(parse, parse.GetValue(model), parse.GetValue(data), reportFolder,
                    recognition.Read(parse) with { Tta = parse.GetValue(tta) }, parse.GetValue(engine), parse.GetValue(precision), parse.GetValue(json), ct));
            }
            var splitName = parse.GetValue(split)!;
            if (!splitName.Equals("all", StringComparison.OrdinalIgnoreCase) && !DataSplits.TryParse(splitName, out _))
            {
                throw new UserFacingException($"--split: '{splitName}' is not one of PrivateTest, PublicTest, Training, all");
            }
            var dataPath = parse.GetValue(data) ?? Fer2013Dataset.FindSharedData() ?? throw new UserFacingException(NoDataMessage());
            var modelPaths = parse.GetValue(model) is { Length: > 0 } given ? given : [ShippedModels.DefaultPath()];
            using var models = new ModelSet(modelPaths);
            foreach (var loaded in models.Loaded) EngineOption.Apply(loaded, parse.GetValue(engine));
            var all = Fer2013Dataset.Load(dataPath, new DatasetLoadOptions
            {
                SkipBadRows = parse.GetValue(dataOptions.SkipBadRows),
                FerPlusLabels = parse.GetValue(dataOptions.FerPlus),
                FerPlusMode = parse.GetValue(dataOptions.FerPlusMode),
            }, ct);
            var subset = splitName.Equals("all", StringComparison.OrdinalIgnoreCase) ? all : all.Subset(DataSplits.Parse(splitName));
            if (subset.Count == 0) throw new UserFacingException($"{dataPath}: no faces in split {splitName}");
            var options = new EvaluationOptions { Tta = parse.GetValue(tta) };
            var quiet = parse.GetValue(json);

            EvaluationResult? result = null;
            void Run(IProgress<int>? progress) => result = Evaluator.Evaluate(models.Loaded, subset, options, splitName, progress, ct);
            if (quiet || !AnsiConsole.Profile.Capabilities.Interactive)
            {
                Run(null);
            }
            else
            {
                AnsiConsole.Progress().Start(ctx =>
                {
                    var task = ctx.AddTask($"evaluating {subset.Count:N0} faces", maxValue: subset.Count);
                    Run(new SyncProgress<int>(n => task.Value = n));
                });
            }
            // Run always assigns it; the progress lambda just hides that from the compiler.
            var evaluated = result!;
            var folder = reportFolder ?? Path.Combine("reports", $"{evaluated.ModelName}-{splitName}{(options.Tta == TtaMode.None ? "" : "-" + options.Tta.ToString().ToLowerInvariant())}");
            ReportWriter.Write(evaluated, folder, string.Join(", ", modelPaths), dataPath);
            if (quiet)
            {
                Console.WriteLine(File.ReadAllText(Path.Combine(folder, ReportWriter.MetricsFile)));
            }
            else
            {
                PrintSummary(evaluated);
                AnsiConsole.MarkupLineInterpolated($"report: [bold]{Path.Combine(folder, "report.md")}[/] (metrics.json, predictions.csv, confusion_matrix.png, per_class.png, mistakes.png)");
            }
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    /// <summary>Why no data was found, naming FERSHARP_DATA when it is set (and so the only place looked).</summary>
    internal static string NoDataMessage() => Environment.GetEnvironmentVariable("FERSHARP_DATA") is { Length: > 0 } env
        ? $"no dataset given, and FERSHARP_DATA={env} holds no fer2013.csv.gz: pass --data <fer2013.csv(.gz) | image folder> or fix FERSHARP_DATA"
        : "no dataset given: pass --data <fer2013.csv(.gz) | image folder> (or set FERSHARP_DATA to the folder holding fer2013.csv.gz)";

    private static void PrintSummary(EvaluationResult result)
    {
        var m = result.Metrics;
        foreach (var note in result.Notes) AnsiConsole.MarkupLineInterpolated($"[yellow]{note}[/]");
        var summary = new Table().Border(TableBorder.Rounded).Title($"{result.ModelName} on {result.Split} ({m.Count:N0} faces)");
        summary.AddColumn("metric");
        summary.AddColumn(new TableColumn("value").RightAligned());
        summary.AddRow("accuracy", $"[bold]{m.Accuracy:P2}[/]");
        if (result.WithoutTta is { } plain)
        {
            summary.AddRow("accuracy without TTA", $"{plain.Accuracy:P2}");
            var already = result.Tta == TtaMode.Flip && result.FlipAveraging ? " (the package already averages each face with its mirror: a flip adds nothing)" : "";
            summary.AddRow($"{result.Tta} TTA gain", $"{(m.Accuracy - plain.Accuracy) * 100:+0.00;-0.00} points{already}");
        }
        summary.AddRow("macro F1", $"{m.MacroF1:P2}");
        summary.AddRow("weighted F1", $"{m.WeightedF1:P2}");
        foreach (var (k, v) in m.TopKAccuracy.Where(kv => kv.Key > 1)) summary.AddRow($"top-{k} accuracy", $"{v:P2}");
        summary.AddRow("expected calibration error", $"{m.ExpectedCalibrationError:F4}");
        summary.AddRow("throughput", $"{result.ImagesPerSecond:N0} faces/s");
        AnsiConsole.Write(summary);

        var perClass = new Table().Border(TableBorder.Rounded).Title("per class");
        perClass.AddColumn("class");
        foreach (var h in new[] { "precision", "recall", "F1", "support" }) perClass.AddColumn(new TableColumn(h).RightAligned());
        foreach (var c in m.PerClass)
        {
            perClass.AddRow(c.Predictable ? c.Name : $"{c.Name} [yellow](not predictable)[/]", $"{c.Precision:P1}", $"{c.Recall:P1}", $"{c.F1:P1}", $"{c.Support}");
        }
        AnsiConsole.Write(perClass);

        var confusion = new Table().Border(TableBorder.Rounded).Title("confusion matrix (rows: true, columns: predicted)");
        confusion.AddColumn("");
        foreach (var c in m.Classes) confusion.AddColumn(new TableColumn(c).RightAligned());
        for (var r = 0; r < m.Classes.Count; r++)
        {
            confusion.AddRow([m.Classes[r], .. m.ConfusionMatrix[r].Select((v, c) => c == r ? $"[bold green]{v}[/]" : v.ToString(System.Globalization.CultureInfo.InvariantCulture))]);
        }
        AnsiConsole.Write(confusion);
    }

    public static Command Compare()
    {
        var items = new Argument<string[]>("reports-or-models") { Description = "Report folders (with metrics.json) or model packages.", Arity = ArgumentArity.OneOrMore };
        var data = new Option<string?>("--data", "-d") { Description = "Data for evaluating model packages given directly." };
        var split = new Option<string>("--split") { Description = "Split for model packages given directly.", DefaultValueFactory = _ => "PrivateTest" };
        var tta = new Option<TtaMode>("--tta") { Description = "TTA for model packages given directly.", DefaultValueFactory = _ => TtaMode.None };
        var command = new Command("compare", "Side-by-side table of several models on the same data, and face by face against the first (McNemar's exact test) when their answers per face are known.") { items, data, split, tta };
        command.SetAction((parse, ct) =>
        {
            var rows = new List<JsonElement>();
            var answers = new List<(IReadOnlyList<string> Classes, int[] Truth, int[] Predicted)?>();
            FaceDataset? loaded = null;
            foreach (var item in parse.GetRequiredValue(items))
            {
                var metricsPath = Directory.Exists(item) ? Path.Combine(item, ReportWriter.MetricsFile) : item;
                if (File.Exists(metricsPath) && Path.GetFileName(metricsPath) == ReportWriter.MetricsFile)
                {
                    rows.Add(JsonDocument.Parse(File.ReadAllText(metricsPath)).RootElement.Clone());
                    answers.Add(ReportWriter.ReadPredictions(Path.GetDirectoryName(Path.GetFullPath(metricsPath))!));
                    continue;
                }
                using var emotionModel = EmotionModel.Load(item);
                if (loaded == null)
                {
                    var dataPath = parse.GetValue(data) ?? Fer2013Dataset.FindSharedData()
                        ?? throw new UserFacingException($"{item} is a model: pass --data to evaluate it");
                    loaded = Fer2013Dataset.Load(dataPath, cancellationToken: ct).Subset(DataSplits.Parse(parse.GetValue(split)!));
                }
                var result = Evaluator.Evaluate(emotionModel, loaded, new EvaluationOptions { Tta = parse.GetValue(tta) }, parse.GetValue(split)!, cancellationToken: ct);
                rows.Add(JsonDocument.Parse(ReportWriter.MetricsJson(result, item, parse.GetValue(data))).RootElement.Clone());
                answers.Add((result.Metrics.Classes, result.Truth.ToArray(), ReportWriter.PredictedClasses(result)));
            }
            var classes = rows.SelectMany(r => r.GetProperty("classes").EnumerateArray().Select(c => c.GetString()!)).Distinct().ToList();
            var table = new Table().Border(TableBorder.Rounded).Title("model comparison");
            table.AddColumn("");
            foreach (var r in rows) table.AddColumn(new TableColumn(Markup.Escape($"{Label(rows, r)}\n{r.GetProperty("split").GetString()} tta={r.GetProperty("tta").GetString()}")).RightAligned());
            void Row(string label, Func<JsonElement, string> cell) => table.AddRow([label, .. rows.Select(cell)]);
            Row("faces", r => r.GetProperty("count").GetInt32().ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
            Row("[bold]accuracy[/]", r => $"[bold]{r.GetProperty("accuracy").GetDouble():P2}[/]");
            Row("macro F1", r => $"{r.GetProperty("macro_f1").GetDouble():P2}");
            Row("weighted F1", r => $"{r.GetProperty("weighted_f1").GetDouble():P2}");
            Row("ECE", r => $"{r.GetProperty("expected_calibration_error").GetDouble():F4}");
            Row("faces/s", r => $"{r.GetProperty("images_per_second").GetDouble():N0}");
            foreach (var c in classes)
            {
                Row($"recall {c}", r => r.GetProperty("per_class").TryGetProperty(c, out var pc) ? $"{pc.GetProperty("recall").GetDouble():P1}" : "-");
            }
            var splits = rows.Select(r => r.GetProperty("split").GetString()).Distinct().Count();
            var counts = rows.Select(r => r.GetProperty("count").GetInt32()).Distinct().Count();
            AnsiConsole.Write(table);
            if (splits > 1 || counts > 1)
            {
                AnsiConsole.MarkupLine("[yellow]warning: these results are not on the same data (split or face count differs)[/]");
            }
            else
            {
                PrintFaceByFace(rows, answers);
            }
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    /// <summary>A result's model name, or its path when another result has the same name (two versions of one package).</summary>
    private static string Label(List<JsonElement> rows, JsonElement row)
    {
        static string? Name(JsonElement r) => r.GetProperty("model").GetString();
        var name = Name(row) ?? "?";
        return rows.Count(r => Name(r) == name) > 1 && row.TryGetProperty("model_path", out var path) && path.GetString() is { } p ? p : name;
    }

    /// <summary>
    /// Each model against the first, face by face. Needs every answer per face (reports written before
    /// predictions.csv existed have none) and the same labels in the same order.
    /// </summary>
    private static void PrintFaceByFace(List<JsonElement> rows, List<(IReadOnlyList<string> Classes, int[] Truth, int[] Predicted)?> answers)
    {
        if (answers.Count < 2) return;
        if (answers.Any(a => a is null))
        {
            AnsiConsole.MarkupLine($"[grey]no face-by-face comparison: a report without {ReportWriter.PredictionsFile} (reports of older FerSharp versions lack it)[/]");
            return;
        }
        var first = answers[0]!.Value;
        if (answers.Any(a => !a!.Value.Classes.SequenceEqual(first.Classes) || !a.Value.Truth.SequenceEqual(first.Truth)))
        {
            AnsiConsole.MarkupLine("[yellow]no face-by-face comparison: the reports' faces or labels differ[/]");
            return;
        }
        var table = new Table().Border(TableBorder.Rounded).Title($"face by face against {Markup.Escape(Label(rows, rows[0]))}");
        table.AddColumn("");
        foreach (var h in new[] { "same label", "both right", "only first right", "only this right", "both wrong", "McNemar exact p" })
        {
            table.AddColumn(new TableColumn(h).RightAligned());
        }
        for (var i = 1; i < answers.Count; i++)
        {
            var c = PairedComparison.Of(first.Truth, first.Predicted, answers[i]!.Value.Predicted);
            static string N(int n) => n.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
            table.AddRow(Markup.Escape(Label(rows, rows[i])), N(c.SameLabel), N(c.BothRight),
                N(c.OnlyFirstRight), N(c.OnlySecondRight), N(c.BothWrong), c.McNemarP.ToString("0.000", System.Globalization.CultureInfo.InvariantCulture));
        }
        AnsiConsole.Write(table);
    }
}

/// <summary>Loads the packages named on the command line and disposes whichever loaded if a later one fails.</summary>
internal sealed class ModelSet : IDisposable
{
    private readonly List<EmotionModel> _models = [];

    public ModelSet(IEnumerable<string> paths)
    {
        try
        {
            foreach (var path in paths) _models.Add(EmotionModel.Load(path));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyList<EmotionModel> Loaded => _models;

    public void Dispose()
    {
        foreach (var m in _models) m.Dispose();
        _models.Clear();
    }
}
