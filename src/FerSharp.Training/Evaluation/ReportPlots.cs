using FerSharp.Data;

using OpenCvSharp;

using ScottPlot;

namespace FerSharp.Evaluation;

/// <summary>The pictures of an evaluation report.</summary>
public static class ReportPlots
{
    /// <summary>Heatmap of the row-normalized confusion matrix; each cell shows its count and row percentage.</summary>
    public static byte[] ConfusionMatrix(ClassificationMetrics metrics, string title, int size = 900)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var k = metrics.Classes.Count;
        var normalized = metrics.RowNormalized();
        var intensities = new double[k, k];
        for (var r = 0; r < k; r++)
            for (var c = 0; c < k; c++)
                intensities[r, c] = normalized[r][c];

        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(intensities);
        heatmap.Colormap = new ScottPlot.Colormaps.Blues().Reversed(); // light = rare, dark = frequent
        heatmap.ManualRange = new ScottPlot.Range(0, 1);
        // Heatmap cell (r, c) is centred at x = c, y = k - 1 - r: row 0 (first true class) is drawn at the top.
        heatmap.Extent = new CoordinateRect(0, k - 1, 0, k - 1); // ScottPlot places cell centres on the extent corners
        for (var r = 0; r < k; r++)
            for (var c = 0; c < k; c++)
            {
                var text = plot.Add.Text($"{metrics.ConfusionMatrix[r][c]}\n{normalized[r][c]:P0}", c, k - 1 - r);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontSize = 13;
                text.LabelFontColor = normalized[r][c] > 0.55 ? Colors.White : Colors.Black;
            }
        var ticks = Enumerable.Range(0, k).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, metrics.Classes.ToArray());
        plot.Axes.Left.SetTicks(ticks, metrics.Classes.Reverse().ToArray());
        plot.Axes.SetLimits(-0.5, k - 0.5, -0.5, k - 0.5);
        plot.XLabel("predicted class");
        plot.YLabel("true class");
        plot.Title(title);
        plot.Add.ColorBar(heatmap).Label = "fraction of true class";
        return plot.GetImageBytes(size + 120, size, ImageFormat.Png);
    }

    /// <summary>Grouped bars of precision, recall and F1 per class.</summary>
    public static byte[] PerClass(ClassificationMetrics metrics, string title, int width = 1100, int height = 500)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        var plot = new Plot();
        var palette = new[] { Colors.SteelBlue, Colors.DarkOrange, Colors.SeaGreen };
        var names = new[] { "precision", "recall", "F1" };
        var bars = new List<Bar>();
        for (var c = 0; c < metrics.PerClass.Count; c++)
        {
            var m = metrics.PerClass[c];
            var values = new[] { m.Precision, m.Recall, m.F1 };
            for (var j = 0; j < 3; j++)
            {
                bars.Add(new Bar { Position = c * 4 + j, Value = values[j] * 100, FillColor = palette[j], Size = 0.9 });
            }
        }
        plot.Add.Bars(bars);
        for (var j = 0; j < 3; j++)
        {
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = names[j], FillColor = palette[j] });
        }
        plot.ShowLegend(Alignment.UpperRight);
        plot.Axes.Bottom.SetTicks(
            Enumerable.Range(0, metrics.PerClass.Count).Select(c => c * 4 + 1.0).ToArray(),
            metrics.PerClass.Select(m => $"{m.Name}\n(n={m.Support})").ToArray());
        plot.Axes.SetLimits(-1, metrics.PerClass.Count * 4 - 1, 0, 110);
        plot.YLabel("%");
        plot.Title(title);
        return plot.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>
    /// For the most frequent confusions, the faces the model got wrong with the highest confidence.
    /// Returns null when there are no mistakes.
    /// </summary>
    public static byte[]? ConfidentMistakes(EvaluationResult result, int pairs = 6, int perPair = 8)
    {
        ArgumentNullException.ThrowIfNull(result);
        var metrics = result.Metrics;
        var k = metrics.Classes.Count;
        var confused = Enumerable.Range(0, k).SelectMany(t => Enumerable.Range(0, k).Where(p => p != t && metrics.ConfusionMatrix[t][p] > 0)
                .Select(p => (True: t, Pred: p, Count: metrics.ConfusionMatrix[t][p])))
            .OrderByDescending(x => x.Count).Take(pairs).ToList();
        if (confused.Count == 0) return null;

        const int cell = 96, labelWidth = 260, pad = 6, header = 36;
        var width = labelWidth + perPair * (cell + pad) + pad;
        var height = header + confused.Count * (cell + pad) + pad;
        using var canvas = new Mat(height, width, MatType.CV_8UC3, Scalar.All(255));
        Cv2.PutText(canvas, $"Most confident mistakes: {result.ModelName} ({result.Split})", new OpenCvSharp.Point(pad, 24),
            HersheyFonts.HersheySimplex, 0.7, Scalar.All(20), 2, LineTypes.AntiAlias);
        for (var row = 0; row < confused.Count; row++)
        {
            var (t, p, count) = confused[row];
            var y = header + row * (cell + pad);
            Cv2.PutText(canvas, $"{metrics.Classes[t]} -> {metrics.Classes[p]}", new OpenCvSharp.Point(pad, y + 40),
                HersheyFonts.HersheySimplex, 0.65, Scalar.All(20), 2, LineTypes.AntiAlias);
            Cv2.PutText(canvas, $"{count} faces", new OpenCvSharp.Point(pad, y + 70), HersheyFonts.HersheySimplex, 0.55,
                Scalar.All(90), 1, LineTypes.AntiAlias);
            var worst = Enumerable.Range(0, result.Truth.Count)
                .Where(i => result.Truth[i] == t && ClassificationMetrics.ArgMax(result.Probabilities[i]) == p)
                .OrderByDescending(i => result.Probabilities[i][p]).Take(perPair).ToList();
            for (var j = 0; j < worst.Count; j++)
            {
                var i = worst[j];
                using var face = Mat.FromPixelData(FaceDataset.ImageSize, FaceDataset.ImageSize, MatType.CV_8UC1, result.Data.Face(i).ToArray());
                using var big = face.Resize(new OpenCvSharp.Size(cell, cell), 0, 0, InterpolationFlags.Linear);
                using var colour = big.CvtColor(ColorConversionCodes.GRAY2BGR);
                var x = labelWidth + j * (cell + pad);
                colour.CopyTo(canvas[new Rect(x, y, cell, cell)]);
                Cv2.Rectangle(canvas, new Rect(x, y + cell - 18, cell, 18), new Scalar(0, 0, 0), -1);
                Cv2.PutText(canvas, $"{result.Probabilities[i][p]:P0}", new OpenCvSharp.Point(x + 4, y + cell - 4),
                    HersheyFonts.HersheySimplex, 0.45, Scalar.All(255), 1, LineTypes.AntiAlias);
            }
        }
        return canvas.ImEncode(".png");
    }
}
