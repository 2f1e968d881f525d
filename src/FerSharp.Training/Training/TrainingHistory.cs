using System.Globalization;
using System.Text;

namespace FerSharp.Training;

/// <summary>One epoch's numbers.</summary>
public sealed record EpochMetrics(
    int Epoch,
    double TrainLoss,
    double TrainAccuracy,
    double ValLoss,
    double ValAccuracy,
    double LearningRate,
    double Seconds,
    double ImagesPerSecond)
{
    public double Monitored(string monitor) => monitor == "val_loss" ? ValLoss : ValAccuracy;
}

public static class TrainingHistory
{
    public const string CsvHeader = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate,seconds,images_per_second";

    public static string ToCsv(IEnumerable<EpochMetrics> history)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder(CsvHeader).Append('\n');
        foreach (var e in history)
        {
            sb.Append(string.Create(inv,
                $"{e.Epoch},{e.TrainLoss:F6},{e.TrainAccuracy:F6},{e.ValLoss:F6},{e.ValAccuracy:F6},{e.LearningRate:G6},{e.Seconds:F2},{e.ImagesPerSecond:F1}\n"));
        }
        return sb.ToString();
    }

    public static List<EpochMetrics> FromCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        if (lines.Length == 0 || lines[0].Trim() != CsvHeader)
        {
            throw new FormatException($"{path}:1: expected header '{CsvHeader}'");
        }
        var list = new List<EpochMetrics>();
        for (var i = 1; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            var f = lines[i].Split(',');
            if (f.Length != 8) throw new FormatException($"{path}:{i + 1}: expected 8 fields, found {f.Length}");
            double D(int k) => double.Parse(f[k], CultureInfo.InvariantCulture);
            list.Add(new EpochMetrics(int.Parse(f[0], CultureInfo.InvariantCulture), D(1), D(2), D(3), D(4), D(5), D(6), D(7)));
        }
        return list;
    }
}
