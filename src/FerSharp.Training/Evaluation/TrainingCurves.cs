using FerSharp.Training;

using ScottPlot;

namespace FerSharp.Evaluation;

/// <summary>Draws train-vs-validation loss and accuracy per epoch, side by side, as one PNG.</summary>
public static class TrainingCurves
{
    /// <summary>
    /// Writes the curves atomically; the accuracy plot marks <c>packageEpoch</c> (see <see cref="Marked"/>).
    /// <paramref name="distilled"/>: the training loss includes a distillation term (<see cref="TrainLossLegend"/>).
    /// </summary>
    public static void Save(IReadOnlyList<EpochMetrics> history, string path, string title, int? packageEpoch = null, bool distilled = false,
        int width = 1200, int height = 450)
    {
        ArgumentNullException.ThrowIfNull(history);
        AtomicFile.WriteAllBytes(path, Render(history, title, packageEpoch, distilled, width, height));
    }

    /// <summary>
    /// The loss plot's legend for the training curve. A distilling run's training loss adds the KL term to the
    /// teacher, so it sits on another scale than the validation loss (labels only), and a reader comparing
    /// the two would see a gap that is not overfitting.
    /// </summary>
    public static string TrainLossLegend(bool distilled) => distilled ? "train (labels + distillation)" : "train";

    public static byte[] Render(IReadOnlyList<EpochMetrics> history, string title, int? packageEpoch = null, bool distilled = false,
        int width = 1200, int height = 450)
    {
        ArgumentNullException.ThrowIfNull(history);
        var epochs = history.Select(h => (double)h.Epoch).ToArray();
        var multiplot = new Multiplot();
        multiplot.AddPlots(2);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();

        var loss = multiplot.GetPlot(0);
        AddSeries(loss, epochs, history.Select(h => h.TrainLoss).ToArray(), TrainLossLegend(distilled), Colors.SteelBlue);
        AddSeries(loss, epochs, history.Select(h => h.ValLoss).ToArray(), "validation", Colors.OrangeRed);
        loss.Title($"{title}: loss");
        loss.XLabel("epoch");
        loss.YLabel(distilled ? "loss" : "cross-entropy");
        loss.ShowLegend(Alignment.UpperRight);

        var accuracy = multiplot.GetPlot(1);
        AddSeries(accuracy, epochs, history.Select(h => h.TrainAccuracy * 100).ToArray(), "train", Colors.SteelBlue);
        AddSeries(accuracy, epochs, history.Select(h => h.ValAccuracy * 100).ToArray(), "validation", Colors.OrangeRed);
        if (Marked(history, packageEpoch) is var (epoch, text))
        {
            var marker = accuracy.Add.Marker(epoch.Epoch, epoch.ValAccuracy * 100);
            marker.Color = Colors.OrangeRed;
            marker.Size = 10;
            var label = accuracy.Add.Text(text, epoch.Epoch, epoch.ValAccuracy * 100);
            label.LabelAlignment = Alignment.UpperRight; // left of and below the marker, so it stays inside the axes
        }
        accuracy.Title($"{title}: accuracy");
        accuracy.XLabel("epoch");
        accuracy.YLabel("accuracy (%)");
        accuracy.ShowLegend(Alignment.LowerRight);

        foreach (var plot in new[] { loss, accuracy })
        {
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { IntegerTicksOnly = true };
        }
        using var image = multiplot.Render(width, height);
        return image.GetImageBytes(ImageFormat.Png, 100);
    }

    /// <summary>
    /// The epoch the accuracy plot marks, and its label. The package's epoch when known: a run monitored on
    /// validation loss, or one that trains on its validation faces (the package is the last epoch), does
    /// not keep the epoch of highest validation accuracy, and "best" there would point at weights nobody has.
    /// </summary>
    internal static (EpochMetrics Epoch, string Label)? Marked(IReadOnlyList<EpochMetrics> history, int? packageEpoch)
    {
        if (packageEpoch is { } kept && history.FirstOrDefault(h => h.Epoch == kept) is { } package)
        {
            return (package, FormattableString.Invariant($"package {package.ValAccuracy * 100:F2} % @ {package.Epoch}"));
        }
        var best = history.MaxBy(h => h.ValAccuracy);
        return best is null ? null : (best, FormattableString.Invariant($"best {best.ValAccuracy * 100:F2} % @ {best.Epoch}"));
    }

    private static void AddSeries(Plot plot, double[] xs, double[] ys, string label, Color color)
    {
        var line = plot.Add.Scatter(xs, ys, color);
        line.LegendText = label;
        line.LineWidth = 2;
        line.MarkerSize = xs.Length > 60 ? 0 : 5;
    }
}
