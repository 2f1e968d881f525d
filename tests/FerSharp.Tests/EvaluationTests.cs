using System.Text.Json;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;
using FerSharp.Training;

namespace FerSharp.Tests;

public class ClassificationMetricsTests
{
    private static float[] OneHot(int k, int index, float confidence = 1f)
    {
        var p = new float[k];
        for (var i = 0; i < k; i++) p[i] = (1 - confidence) / (k - 1);
        p[index] = confidence;
        return p;
    }

    [Fact]
    public void Matches_a_hand_computed_example_with_an_unpredicted_class_and_a_class_without_samples()
    {
        // classes a, b, c, d.  truth -> predicted:
        // a->a, a->a, a->b, b->b, b->a, c->a, c->b   (c never predicted; d has no samples but is predicted once: b->d)
        string[] classes = ["a", "b", "c", "d"];
        int[] truth = [0, 0, 0, 1, 1, 2, 2, 1];
        int[] predicted = [0, 0, 1, 1, 0, 0, 1, 3];
        var probabilities = predicted.Select(p => OneHot(4, p)).ToArray();
        var m = ClassificationMetrics.Compute(classes, [true, true, true, true], truth, probabilities);

        Assert.Equal(8, m.Count);
        Assert.Equal(3.0 / 8, m.Accuracy, 12);
        // rows = truth, columns = predicted
        Assert.Equal(new[] { 2, 1, 0, 0 }, m.ConfusionMatrix[0]);
        Assert.Equal(new[] { 1, 1, 0, 1 }, m.ConfusionMatrix[1]);
        Assert.Equal(new[] { 1, 1, 0, 0 }, m.ConfusionMatrix[2]);
        Assert.Equal(new[] { 0, 0, 0, 0 }, m.ConfusionMatrix[3]);

        var a = m.PerClass[0];
        Assert.Equal(2.0 / 4, a.Precision, 12); // predicted a: 4 times, 2 right
        Assert.Equal(2.0 / 3, a.Recall, 12);
        Assert.Equal(2 * 0.5 * (2.0 / 3) / (0.5 + 2.0 / 3), a.F1, 12);
        var b = m.PerClass[1];
        Assert.Equal(1.0 / 3, b.Precision, 12);
        Assert.Equal(1.0 / 3, b.Recall, 12);
        var c = m.PerClass[2];
        Assert.Equal(0, c.Precision); // never predicted: precision defined as 0, not NaN
        Assert.Equal(0, c.Recall);
        Assert.Equal(0, c.Predicted);
        var d = m.PerClass[3];
        Assert.Equal(0, d.Support);
        Assert.Equal(1, d.Predicted);

        // macro F1 over classes present in the data (a, b, c); weighted by support
        Assert.Equal((a.F1 + b.F1 + 0) / 3, m.MacroF1, 12);
        Assert.Equal((a.F1 * 3 + b.F1 * 3) / 8, m.WeightedF1, 12);
        var normalized = m.RowNormalized();
        Assert.Equal(2.0 / 3, normalized[0][0], 12);
        Assert.Equal(1.0 / 3, normalized[0][1], 12);
        Assert.All(normalized[3], v => Assert.Equal(0, v)); // a class with no samples stays zero, not NaN
    }

    [Fact]
    public void Top_k_and_calibration_error()
    {
        string[] classes = ["a", "b", "c"];
        float[][] probabilities = [[0.7f, 0.2f, 0.1f], [0.6f, 0.3f, 0.1f], [0.1f, 0.3f, 0.6f], [0.5f, 0.4f, 0.1f]];
        int[] truth = [0, 1, 0, 2];
        var m = ClassificationMetrics.Compute(classes, [true, true, true], truth, probabilities, calibrationBins: 10);
        Assert.Equal(0.25, m.TopKAccuracy[1], 12);
        Assert.Equal(0.5, m.TopKAccuracy[2], 12); // sample 2 (truth b ranked 2nd)
        Assert.Equal(1.0, m.TopKAccuracy[3], 12);
        // bins: 0.7 -> [0.7,0.8) correct; 0.6,0.6 -> [0.6,0.7) both wrong; 0.5 -> [0.5,0.6) wrong
        var expected = 0.25 * Math.Abs(1 - 0.7) + 0.5 * Math.Abs(0 - 0.6) + 0.25 * Math.Abs(0 - 0.5);
        Assert.Equal(expected, m.ExpectedCalibrationError, 6);
    }

    [Fact]
    public void Data_classes_are_mapped_to_the_model_by_name_and_unknown_ones_reported()
    {
        // FER+ style data (8 classes incl. contempt) against a 7-class FER2013 model
        var pixels = new byte[3 * FaceDataset.PixelsPerImage];
        var data = new FaceDataset(EmotionClasses.FerPlus, pixels, [1, 7, 7], [DataSplit.PrivateTest, DataSplit.PrivateTest, DataSplit.PrivateTest]);
        var (classes, predictable, truth, notes) = Evaluator.MapClasses(EmotionClasses.Fer2013, data);
        Assert.Equal([.. EmotionClasses.Fer2013, "contempt"], classes);
        Assert.False(predictable[^1]);
        Assert.Equal(new[] { 3, 7, 7 }, truth); // FER+ "happy" is FER2013 index 3
        Assert.Contains(notes, n => n.Contains("'contempt' is not one the model predicts: its 2 faces", StringComparison.Ordinal));
        Assert.Contains(notes, n => n.Contains("model class 'angry' has no faces", StringComparison.Ordinal));
    }
}

[Collection("torch")]
public class EvaluationReportTests
{
    private static (string ModelPath, string CsvPath) TrainTinyModel(TempDir dir)
    {
        var options = new TrainOptions
        {
            Architecture = "vgg-bn",
            Epochs = 2,
            BatchSize = 32,
            LearningRate = 2e-3,
            Augment = "none",
            Schedule = LrScheduleKind.None,
            EarlyStoppingPatience = 0,
            Seed = 3,
        };
        var trainer = new Trainer(options, Path.Combine(dir.Path, "run")) { DrawCurvesEachEpoch = false };
        trainer.Fit(Synthetic.Patterns(16, seed: 1), Synthetic.Patterns(4, seed: 2, split: DataSplit.PublicTest));
        var csv = dir.File("eval.csv");
        using (var writer = new StreamWriter(csv)) Fer2013CsvWriter.Write(writer, Synthetic.Patterns(5, seed: 9, split: DataSplit.PrivateTest));
        return (trainer.ModelPath, csv);
    }

    private static void AssertPng(string path, int minWidth, int minHeight)
    {
        Assert.True(File.Exists(path), $"{path} missing");
        using var image = OpenCvSharp.Cv2.ImRead(path, OpenCvSharp.ImreadModes.Color);
        Assert.False(image.Empty(), $"{path} does not decode as an image");
        Assert.True(image.Width >= minWidth && image.Height >= minHeight, $"{path} is {image.Width}x{image.Height}");
        OpenCvSharp.Cv2.MeanStdDev(image, out _, out var std);
        Assert.True(std.Val0 > 5, $"{path} looks blank (pixel std {std.Val0:F1})");
    }

    [Fact]
    public void Cli_ship_switches_flip_averaging_on_keeps_it_when_re_shipped_and_switches_it_off()
    {
        using var dir = new TempDir();
        var (model, _) = TrainTinyModel(dir);
        bool Averages(string package)
        {
            using var loaded = EmotionModel.Load(package);
            return loaded.Metadata.FlipAveraging;
        }
        string Ship(string from, string to, params string[] extra)
        {
            var result = Cli.Run(["models", "ship", from, dir.File(to), "--no-test", .. extra]);
            Assert.True(result.ExitCode == 0, result.Stderr);
            return dir.File(to);
        }

        var on = Ship(model, "on", "--flip-averaging");
        Assert.True(Averages(on));
        Assert.True(Averages(Ship(on, "kept")));
        Assert.False(Averages(Ship(on, "off", "--flip-averaging", "false")));
        Assert.False(Averages(Ship(model, "plain")));
    }

    [Fact]
    public void Cli_evaluate_writes_metrics_json_report_and_pictures()
    {
        using var dir = new TempDir();
        var (model, csv) = TrainTinyModel(dir);
        var outDir = Path.Combine(dir.Path, "report");
        var result = Cli.Run("evaluate", "--model", model, "--data", csv, "--split", "PrivateTest", "--tta", "Crops", "--out", outDir, "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);

        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "metrics.json")));
        var root = json.RootElement;
        var accuracy = root.GetProperty("accuracy").GetDouble();
        Assert.InRange(accuracy, 0, 1);
        Assert.Equal(35, root.GetProperty("count").GetInt32());
        Assert.Equal("PrivateTest", root.GetProperty("split").GetString());
        Assert.Equal("run", root.GetProperty("model").GetString());
        Assert.Equal(EmotionClasses.Fer2013, root.GetProperty("classes").EnumerateArray().Select(e => e.GetString()!));
        var matrix = root.GetProperty("confusion_matrix").EnumerateArray().Select(r => r.EnumerateArray().Select(v => v.GetInt32()).ToArray()).ToArray();
        Assert.Equal(7, matrix.Length);
        Assert.All(matrix, row => Assert.Equal(5, row.Sum())); // rows are the true classes: 5 faces each
        Assert.Equal(accuracy, Enumerable.Range(0, 7).Sum(i => matrix[i][i]) / 35.0, 9);
        Assert.Equal(7, root.GetProperty("per_class").EnumerateObject().Count());
        Assert.Equal(5, root.GetProperty("per_class").GetProperty("happy").GetProperty("support").GetInt32());
        Assert.True(root.GetProperty("without_tta").GetProperty("accuracy").GetDouble() >= 0);
        // vgg-bn exports, so Auto ran whichever engine its timing found faster; the report names it.
        var engine = root.GetProperty("engine").GetString();
        Assert.Contains(engine, new[] { "OpenCv", "TorchSharp" });
        // stdout carries the same JSON
        using var printed = JsonDocument.Parse(result.Stdout);
        Assert.Equal(accuracy, printed.RootElement.GetProperty("accuracy").GetDouble());

        AssertPng(Path.Combine(outDir, "confusion_matrix.png"), 800, 800);
        AssertPng(Path.Combine(outDir, "per_class.png"), 1000, 400);
        AssertPng(Path.Combine(outDir, "curves.png"), 1000, 400);
        var report = File.ReadAllText(Path.Combine(outDir, "report.md"));
        Assert.Contains("![confusion matrix](confusion_matrix.png)", report);
        Assert.Contains("TTA gain", report);
        Assert.Contains($"({engine} engine)", report);

        // An ensemble of a model with itself averages equal probabilities: same accuracy, the ensemble's name.
        var ensembleDir = Path.Combine(dir.Path, "ensemble");
        var ensemble = Cli.Run("evaluate", "-m", model, "-m", model, "--data", csv, "--split", "PrivateTest", "--tta", "Crops", "--out", ensembleDir, "--json", "--engine", "TorchSharp");
        Assert.True(ensemble.ExitCode == 0, ensemble.Stderr);
        using var ensembleJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(ensembleDir, "metrics.json")));
        Assert.Equal("run+run", ensembleJson.RootElement.GetProperty("model").GetString());
        Assert.Equal("TorchSharp", ensembleJson.RootElement.GetProperty("engine").GetString());
        Assert.Equal(accuracy, ensembleJson.RootElement.GetProperty("accuracy").GetDouble(), 9);

        // predictions.csv: one row per face, whose right answers give the reported accuracy.
        var rows = File.ReadAllLines(Path.Combine(outDir, ReportWriter.PredictionsFile));
        Assert.Equal("face,origin,truth,predicted,p_angry,p_disgust,p_fear,p_happy,p_sad,p_surprise,p_neutral", rows[0]);
        Assert.Equal(35, rows.Length - 1);
        Assert.All(rows.Skip(1), r => Assert.Contains(".csv:", r.Split(',')[1])); // the CSV line each face came from
        Assert.Equal(accuracy, rows.Skip(1).Count(r => r.Split(',')[2] == r.Split(',')[3]) / 35.0, 9);
        var (classes, truth, predicted) = ReportWriter.ReadPredictions(outDir)!.Value;
        Assert.Equal(EmotionClasses.Fer2013, classes);
        var rebuilt = new int[7, 7];
        for (var i = 0; i < truth.Length; i++) rebuilt[truth[i], predicted[i]]++;
        Assert.All(Enumerable.Range(0, 49), cell => Assert.Equal(matrix[cell / 7][cell % 7], rebuilt[cell / 7, cell % 7]));

        var compare = Cli.Run("compare", outDir, ensembleDir);
        Assert.True(compare.ExitCode == 0, compare.Stderr);
        Assert.Contains("accuracy", compare.Stdout);
        // Equal accuracies mean as many faces right only in one as only in the other: McNemar's p is 1.
        Assert.Contains("face by face against run", compare.Stdout);
        Assert.Contains("1.000", compare.Stdout);

        rows[3] = string.Join(',', rows[3].Split(',').Select((f, i) => i == 2 ? "joyful" : f));
        File.WriteAllLines(Path.Combine(outDir, ReportWriter.PredictionsFile), rows);
        var broken = Cli.Run("compare", outDir, ensembleDir);
        Assert.NotEqual(0, broken.ExitCode);
        Assert.Contains("predictions.csv, line 4, field 'truth': 'joyful'", broken.Stderr);
    }

    [Fact]
    public void Paired_comparison_counts_faces_and_gives_the_exact_mcnemar_p()
    {
        int[] truth = [0, 0, 1, 1, 2, 2, 3];
        int[] first = [0, 0, 1, 0, 2, 1, 4];
        int[] second = [0, 1, 1, 1, 0, 1, 3];
        var c = PairedComparison.Of(truth, first, second);
        Assert.Equal((7, 2, 2, 2, 1, 3), (c.Faces, c.BothRight, c.OnlyFirstRight, c.OnlySecondRight, c.BothWrong, c.SameLabel));
        Assert.Equal(1, c.McNemarP);
        // 0 against 5 discordant faces: 2 · 0.5^5; and the seventh and eighth cycles' packages (133 against
        // 111 on PrivateTest, docs/BENCHMARKS.md), p = 0.179 by the binomial tail.
        Assert.Equal(0.0625, PairedComparison.ExactMcNemarP(0, 5), 12);
        Assert.Equal(PairedComparison.ExactMcNemarP(5, 0), PairedComparison.ExactMcNemarP(0, 5));
        Assert.Equal(0.179, PairedComparison.ExactMcNemarP(133, 111), 3);
        Assert.Equal(1, PairedComparison.ExactMcNemarP(0, 0));
        Assert.InRange(PairedComparison.ExactMcNemarP(2000, 1500), 0, 1e-15); // no underflow to NaN
        Assert.Throws<ArgumentException>(() => PairedComparison.Of(truth, first, second[..3]));
    }

    [Fact]
    public void Training_curves_mark_the_epoch_the_package_holds()
    {
        static EpochMetrics At(int epoch, double valAccuracy) => new(epoch, 1.0, 0.5, 1.0, valAccuracy, 0.01, 1, 100);
        EpochMetrics[] history = [At(1, 0.60), At(2, 0.70), At(3, 0.65)];

        // A run on its validation faces ships the last epoch, not the one of highest validation accuracy.
        var (package, label) = TrainingCurves.Marked(history, packageEpoch: 3)!.Value;
        Assert.Equal(3, package.Epoch);
        Assert.Equal("package 65.00 % @ 3", label);

        // Without a package epoch (or before one exists) the highest validation accuracy is marked.
        Assert.Equal("best 70.00 % @ 2", TrainingCurves.Marked(history, packageEpoch: null)!.Value.Label);
        Assert.Equal("best 70.00 % @ 2", TrainingCurves.Marked(history, packageEpoch: 0)!.Value.Label);
        Assert.Null(TrainingCurves.Marked([], packageEpoch: 3));
    }

    [Fact]
    public void Missing_model_is_a_clear_error()
    {
        using var dir = new TempDir();
        var result = Cli.Run("evaluate", "--model", dir.File("nope"), "--data", dir.File("x.csv"));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no such model package", result.Stderr);
    }

    [Fact]
    public void Tta_views_have_the_input_shape()
    {
        using var faces = TorchSharp.torch.zeros(2, 1, 48, 48);
        Assert.Single(TestTimeAugmentation.Views(faces, TtaMode.None));
        Assert.Equal(2, TestTimeAugmentation.Views(faces, TtaMode.Flip).Count);
        var crops = TestTimeAugmentation.Views(faces, TtaMode.Crops);
        Assert.Equal(10, crops.Count);
        Assert.All(crops, v => Assert.Equal(new long[] { 2, 1, 48, 48 }, v.shape));
        Assert.Single(TestTimeAugmentation.Views(faces, TtaMode.Flip, withoutMirrors: true));
        Assert.Equal(5, TestTimeAugmentation.Views(faces, TtaMode.Crops, withoutMirrors: true).Count);
    }
}
