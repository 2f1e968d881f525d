using System.Globalization;
using System.Text;

using FerSharp.Data;
using FerSharp.Models;
using FerSharp.Training;

namespace FerSharp.Evaluation;

/// <summary>
/// A package's <c>MODEL_CARD.md</c>, written from its <c>model.json</c> when it is shipped or re-scored, so
/// its figures are the recorded ones and a test can hold them to a fresh evaluation.
/// </summary>
public static class ModelCard
{
    public const string FileName = "MODEL_CARD.md";

    private static readonly DateTimeOffset OriginalPixelsSince = new(2026, 12, 6, 0, 0, 0, TimeSpan.Zero);

    /// <param name="m">The package's metadata, metrics recorded.</param>
    /// <param name="weightBytes">Size of the weights file.</param>
    /// <param name="limits">What the model is bad at, measured (one line each); the general limits are always listed.</param>
    public static string Render(ModelMetadata m, long weightBytes, IReadOnlyList<string>? limits = null)
    {
        ArgumentNullException.ThrowIfNull(m);
        var inv = CultureInfo.InvariantCulture;
        var metrics = m.Metrics;
        string Pct(string key) => metrics.TryGetValue(key, out var v) ? (v * 100).ToString("F2", inv) + "%" : "-";
        var ferPlus = m.ClassNames.SequenceEqual(EmotionClasses.FerPlus);
        var card = new StringBuilder();
        card.AppendLine(inv, $"# `{m.Name}`").AppendLine();
        card.AppendLine(inv, $"`{m.Architecture}` network, {m.Parameters:N0} parameters, {weightBytes / 1e6:F1} MB of {m.WeightsDtype} weights. ")
            .AppendLine(inv, $"Classes: {string.Join(", ", m.ClassNames)}. Input: one 48x48 grey face; {m.Normalization}.{(m.FlipAveraging ? " Each face is averaged with its mirror image." : "")}")
            .AppendLine();
        card.AppendLine("## Intended use and limits").AppendLine();
        card.AppendLine("The expression of faces in photos and video, found by `fer predict`'s detector, for research, prototypes and")
            .AppendLine("aggregate measurements; not for judging individuals (mood, honesty, health or suitability).");
        card.AppendLine("- Trained on FER2013: mostly frontal web photos, adults, 48x48 grey; few disgust faces (547 of 35,887).");
        foreach (var limit in limits ?? []) card.AppendLine(inv, $"- {limit}");
        card.AppendLine();
        card.AppendLine("## Data").AppendLine();
        var splits = m.Dataset?.Splits is { } s ? string.Join(" + ", s) : "Training";
        // The shared fer2013.csv.gz held the image-folder release's stretched pixels until the original ones replaced it that day.
        var pixels = m.Created < OriginalPixelsSince
            ? "as that file was before 2026-12-06: the image-folder release's contrast-stretched pixels"
            : "the original FER2013 pixels";
        card.AppendLine(inv, $"`{Path.GetFileName(m.Dataset?.Source ?? "fer2013.csv.gz")}` ({splits}, {m.Dataset?.Count ?? 0:N0} faces), {pixels}{(ferPlus ? "; labels from the FER+ votes (`fer2013new.csv`, MIT)" : "; FER2013 labels")}.")
            .AppendLine();
        card.AppendLine("## Recipe").AppendLine();
        var options = m.TrainOptions();
        if (options != null)
        {
            card.AppendLine("```").AppendLine(Command(options, ferPlus)).AppendLine("```");
        }
        // An average's epochs and time are its members' together, and the command is its last member's only.
        if (m.AveragedFrom is { Count: > 0 } members)
        {
            var names = string.Join(", ", members.Select(a => $"`{a.Name}`"));
            card.AppendLine(inv, $"The weights of {names} averaged into one network (`fer models average`){(options != null ? $"; the command above trained `{members[^1].Name}`" : "")}.")
                .AppendLine(inv, $"{AverageEffort(m)}{(options?.InitFrom is { } init ? $"; `{members[^1].Name}` started from {StartedFrom(init)}" : "")}; shipped with `fer models ship`.");
        }
        else if (options is { } t)
        {
            var epochs = m.Epochs is { } e && e < t.Epochs ? $"The package is epoch {e} of {t.Epochs}, the best on the validation split" : $"{m.Epochs} epochs";
            card.AppendLine(inv, $"{epochs}{(m.TrainingSeconds is { } sec ? $"; {TrainingHours(sec)}" : "")}{(t.InitFrom is { } init ? $"; started from {StartedFrom(init)}" : "")}; shipped with `fer models ship`.");
        }
        if (m.History is { Length: > 0 } history) card.AppendLine(history);
        card.AppendLine();
        card.AppendLine("## Metrics").AppendLine();
        if (ferPlus)
        {
            card.AppendLine("FER+ test set (FER2013 PrivateTest faces), unknown and not-a-face excluded:").AppendLine();
            card.AppendLine("| rule | accuracy | + flip |").AppendLine("|---|---:|---:|");
            card.AppendLine(inv, $"| majority (over half of the votes, lone votes dropped) | {Pct("ferplus_majority_privatetest_accuracy")} | {Pct("ferplus_majority_privatetest_accuracy_flip")} |");
            card.AppendLine(inv, $"| plurality (most votes) | {Pct("ferplus_plurality_privatetest_accuracy")} | {Pct("ferplus_plurality_privatetest_accuracy_flip")} |");
            card.AppendLine().AppendLine("Recall per class (majority rule): " + Recalls(m, "ferplus_majority_")).AppendLine();
        }
        else
        {
            var trainedOnPublic = m.TrainedOn(DataSplit.PublicTest);
            card.AppendLine("| FER2013 test set | accuracy | + flip | macro F1 |").AppendLine("|---|---:|---:|---:|");
            card.AppendLine(inv, $"| PrivateTest, original pixels | {Pct("privatetest_accuracy")} | {Pct("privatetest_accuracy_flip")} | {Pct("privatetest_macro_f1")} |");
            card.AppendLine(inv, $"| PublicTest, original pixels{(trainedOnPublic ? " (trained on)" : "")} | {Pct("publictest_accuracy")} | {Pct("publictest_accuracy_flip")} | {Pct("publictest_macro_f1")} |");
            if (metrics.ContainsKey(TestSetMetrics.ImageFolderPrefix + "privatetest_accuracy"))
            {
                card.AppendLine(inv, $"| PrivateTest, image-folder release (contrast-stretched, JPEG) | {Pct("images_privatetest_accuracy")} | {Pct("images_privatetest_accuracy_flip")} | {Pct("images_privatetest_macro_f1")} |");
            }
            card.AppendLine().AppendLine("Recall per class (PrivateTest, original pixels): " + Recalls(m, "")).AppendLine();
            if (m.Int8 is { } int8 && metrics.ContainsKey("int8_privatetest_accuracy"))
            {
                card.AppendLine(inv, $"int8 network (`{int8.File}`, what ONNX Runtime runs unless told `--precision float`): PrivateTest {Pct("int8_privatetest_accuracy")} (macro F1 {Pct("int8_privatetest_macro_f1")}), the float network's class for {Pct("int8_privatetest_agreement")} of its faces; PublicTest {Pct("int8_publictest_accuracy")}. One face {metrics.GetValueOrDefault("int8_latency_ms_per_face"):F3} ms against {metrics.GetValueOrDefault("onnxruntime_latency_ms_per_face"):F3} ms for the float network (ONNX Runtime, one thread, timed in turn when scored). Ranges calibrated on {int8.Calibration}.").AppendLine();
            }
        }
        if (metrics.TryGetValue("latency_ms_per_face", out var ms))
        {
            card.AppendLine(inv, $"Latency: {ms:F2} ms per face at batch 1 (median, pre-processing and flip averaging included, measured when shipped; docs/BENCHMARKS.md has the current bench).").AppendLine();
        }
        card.AppendLine("## Licence").AppendLine();
        card.AppendLine("Weights trained by FerSharp's own code. FER2013 is for research use (ICML 2013 challenge); the FER+ labels are MIT.");
        return card.ToString();
    }

    /// <summary>What making an average took: its members' epochs and hours together, when every member recorded them.</summary>
    private static string AverageEffort(ModelMetadata m) => m.Epochs is { } epochs
        ? string.Create(CultureInfo.InvariantCulture, $"{epochs} epochs{(m.TrainingSeconds is { } sec ? $" and {TrainingHours(sec)}" : "")} across them")
        : "Epochs not recorded for every member";

    /// <summary>A shipped package (under models/) is named as of its day, since it has been replaced since; a run's package by its path.</summary>
    private static string StartedFrom(string init) => init.Replace('\\', '/').StartsWith("models/", StringComparison.Ordinal)
        ? $"the `{init}` of its day (git history)"
        : $"`{init}`";

    private static string TrainingHours(double seconds) => string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:F1} h of training on 2 cores");

    private static string Recalls(ModelMetadata m, string prefix) =>
        string.Join(", ", m.ClassNames.Select(c => m.Metrics.TryGetValue($"{prefix}privatetest_recall_{c}", out var r)
            ? $"{c} {(r * 100).ToString("F1", CultureInfo.InvariantCulture)}%" : $"{c} -"));

    /// <summary>The <c>fer train</c> command line of a recipe (stage of a preset: the options it ran with).</summary>
    public static string Command(TrainOptions t, bool ferPlus)
    {
        ArgumentNullException.ThrowIfNull(t);
        var inv = CultureInfo.InvariantCulture;
        var parts = new List<string> { "./fer train", $"-a {t.Architecture}" };
        if (ferPlus) parts.Add("--ferplus ../shared/data/fer2013/fer2013new.csv --ferplus-mode Distribution");
        if (t.InitFrom is { } init) parts.Add($"--init-from {init}{(t.Narrow ? " --narrow" : "")}");
        if (t.PerFace is { } perFace) parts.Add($"--per-face {perFace}");
        if (t.Standardize) parts.Add("--standardize");
        parts.Add($"-e {t.Epochs} -b {t.BatchSize} --optimizer {t.Optimizer}");
        parts.Add(string.Create(inv, $"--lr {t.LearningRate} --weight-decay {t.WeightDecay}"));
        parts.Add($"--schedule {t.Schedule}");
        if (t.WarmupEpochs > 0) parts.Add(string.Create(inv, $"--warmup {t.WarmupEpochs}"));
        if (t.RestartEpochs.Count > 0) parts.Add(string.Create(inv, $"--restart-at {t.RestartAt} --restart-lr-factor {t.RestartLrFactor}"));
        parts.Add($"--patience {t.EarlyStoppingPatience}");
        if (t.LabelSmoothing > 0) parts.Add(string.Create(inv, $"--label-smoothing {t.LabelSmoothing}"));
        if (t.LogitAdjustment > 0) parts.Add(string.Create(inv, $"--logit-adjust {t.LogitAdjustment}"));
        if (t.Ema > 0) parts.Add(string.Create(inv, $"--ema {t.Ema}"));
        parts.Add($"--augment {t.Augment}");
        if (t.Teacher is { } teacher) parts.Add(string.Create(inv, $"--teacher {teacher}{(t.DistillOffline ? " --distill-offline" : "")} --distill-weight {t.DistillWeight} --distill-temperature {t.DistillTemperature}"));
        if (t.TrainOnValidation) parts.Add("--train-on-validation");
        if (t.Precision != TrainingPrecision.Float32) parts.Add($"--precision {t.Precision}");
        if (t.MemoryFormat != TrainingMemoryFormat.Contiguous) parts.Add($"--memory-format {t.MemoryFormat}");
        parts.Add($"--seed {t.Seed}");
        return string.Join(" \\\n    ", parts);
    }
}
