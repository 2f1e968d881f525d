using System.Globalization;
using System.Text;

namespace FerSharp.Data;

/// <summary>How FER+ crowd votes become training targets.</summary>
public enum FerPlusLabelMode
{
    /// <summary>The class with more than half of the (outlier-filtered) votes; faces without one are excluded.</summary>
    Majority,
    /// <summary>The normalised vote distribution over the 8 classes (soft targets); hard label = its arg-max.</summary>
    Distribution,
    /// <summary>
    /// FER2013's 7 classes and original labels kept; the training target is half the original one-hot label and
    /// half the FER+ votes over those 7 classes (contempt dropped). Faces FER+ excludes keep the one-hot label.
    /// </summary>
    Fer2013Soft,
}

/// <summary>One row of <c>fer2013new.csv</c>: 10 vote counts (8 emotions, unknown, not-a-face).</summary>
public readonly record struct FerPlusVotes(long Line, DataSplit Split, string ImageName, int[] Votes);

/// <summary>
/// Reads the FER+ relabelling (<c>fer2013new.csv</c>) and joins it to <c>fer2013.csv</c> rows by order,
/// following the FER+ reference code: single votes are treated as noise, and images whose winning
/// label is "unknown" or "not a face" (or have no image name) are excluded.
/// </summary>
public static class FerPlusLabels
{
    private const int VoteColumns = 10;
    private const int EmotionCount = 8;

    public static List<FerPlusVotes> Read(string path, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: no such file", path);
        }
        using var stream = DataFiles.OpenMaybeGzip(path);
        using var reader = new StreamReader(stream, Encoding.UTF8, true, 1 << 16);
        var header = reader.ReadLine()?.TrimStart('\uFEFF');
        var expected = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF";
        if (header == null || !header.Trim().Replace(" ,", ",", StringComparison.Ordinal).StartsWith("Usage,Image name", StringComparison.OrdinalIgnoreCase)
            || header.Split(',').Length != 2 + VoteColumns)
        {
            throw new DatasetFormatException(path, 1, $"expected header '{expected}', found '{header}'");
        }
        var rows = new List<FerPlusVotes>(36_000);
        long lineNumber = 1;
        string? line;
        while ((line = reader.ReadLine()) != null)
        {
            lineNumber++;
            if (lineNumber % 4096 == 0) cancellationToken.ThrowIfCancellationRequested();
            if (string.IsNullOrWhiteSpace(line)) continue;
            var fields = line.Split(',');
            if (fields.Length != 2 + VoteColumns)
            {
                throw new DatasetFormatException(path, lineNumber, $"expected {2 + VoteColumns} fields, found {fields.Length}");
            }
            var usage = fields[0].Trim();
            var split = usage switch
            {
                "Training" => DataSplit.Training,
                "PublicTest" => DataSplit.PublicTest,
                "PrivateTest" => DataSplit.PrivateTest,
                _ => throw new DatasetFormatException(path, lineNumber,
                    $"field 'Usage': expected Training, PublicTest or PrivateTest, found '{usage}'", "Usage"),
            };
            var votes = new int[VoteColumns];
            for (var v = 0; v < VoteColumns; v++)
            {
                if (!int.TryParse(fields[2 + v].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out votes[v]) || votes[v] > 1000)
                {
                    var column = expected.Split(',')[2 + v];
                    throw new DatasetFormatException(path, lineNumber,
                        $"field '{column}': expected a vote count, found '{fields[2 + v].Trim()}'", column);
                }
            }
            rows.Add(new FerPlusVotes(lineNumber, split, fields[1].Trim(), votes));
        }
        return rows;
    }

    /// <summary>
    /// The FER+ target for one row, or null when FER+ excludes it. Returns an 8-class distribution
    /// (one-hot for <see cref="FerPlusLabelMode.Majority"/>).
    /// </summary>
    public static float[]? Target(FerPlusVotes row, FerPlusLabelMode mode)
    {
        if (row.ImageName.Length == 0)
        {
            return null; // FER+ leaves the name empty for images that are not faces
        }
        var votes = row.Votes.Select(v => v <= 1 ? 0 : v).ToArray(); // a lone vote is annotator noise
        var total = votes.Sum();
        if (total == 0)
        {
            return null;
        }
        var best = 0;
        for (var i = 1; i < votes.Length; i++)
        {
            if (votes[i] > votes[best]) best = i;
        }
        if (best >= EmotionCount)
        {
            return null; // unknown or not-a-face wins
        }
        var target = new float[EmotionCount];
        if (mode == FerPlusLabelMode.Majority)
        {
            if (votes[best] * 2 <= total)
            {
                return null; // no majority: FER+ marks it unknown
            }
            target[best] = 1f;
            return target;
        }
        var emotionVotes = votes.Take(EmotionCount).Sum();
        for (var i = 0; i < EmotionCount; i++)
        {
            target[i] = votes[i] / (float)emotionVotes;
        }
        return target;
    }

    /// <summary>Relabels <paramref name="fer2013"/> (all rows, in file order) with FER+ votes.</summary>
    public static FaceDataset Apply(FaceDataset fer2013, string ferPlusPath, FerPlusLabelMode mode, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(fer2013);
        var rows = Read(ferPlusPath, cancellationToken);
        if (mode == FerPlusLabelMode.Fer2013Soft)
        {
            return SoftenFer2013(fer2013, rows, ferPlusPath);
        }
        if (rows.Count != fer2013.Count)
        {
            throw new DatasetFormatException(ferPlusPath, 0,
                $"has {rows.Count} label rows but the FER2013 data has {fer2013.Count}; FER+ joins by row order and needs the original fer2013.csv");
        }
        var keep = new List<int>(rows.Count);
        var distributions = new List<float[]>(rows.Count);
        var excluded = 0;
        for (var i = 0; i < rows.Count; i++)
        {
            if (rows[i].Split != fer2013.Splits[i])
            {
                throw new DatasetFormatException(ferPlusPath, rows[i].Line,
                    $"Usage '{rows[i].Split}' does not match row {i + 1} of the FER2013 data ('{fer2013.Splits[i]}'); the files are not in the same order");
            }
            var target = Target(rows[i], mode);
            if (target == null)
            {
                excluded++;
                continue;
            }
            keep.Add(i);
            distributions.Add(target);
        }
        var labels = distributions.Select(ArgMax).ToArray();
        CheckRowOrder(fer2013, keep, labels, ferPlusPath);
        var subset = fer2013.Select(keep);
        var flat = distributions.SelectMany(d => d).ToArray();
        var report = new DatasetLoadReport();
        report.AddNote($"FER+ ({mode}): {keep.Count} faces kept, {excluded} excluded as not-a-face, unknown or without majority");
        return new FaceDataset(EmotionClasses.FerPlus, subset.Pixels.ToArray(), labels, subset.Splits.ToArray(), subset.Origins?.ToArray(),
            mode == FerPlusLabelMode.Distribution ? flat : null, report);
    }

    /// <summary>Weight of the original FER2013 label in a <see cref="FerPlusLabelMode.Fer2013Soft"/> target.</summary>
    public const float Fer2013SoftLabelWeight = 0.5f;

    private static FaceDataset SoftenFer2013(FaceDataset fer2013, List<FerPlusVotes> rows, string ferPlusPath)
    {
        if (!fer2013.ClassNames.SequenceEqual(EmotionClasses.Fer2013))
        {
            throw new DatasetFormatException(ferPlusPath, 0, "FER+ soft targets for FER2013 need the 7 FER2013 classes");
        }
        if (rows.Count != fer2013.Count)
        {
            throw new DatasetFormatException(ferPlusPath, 0,
                $"has {rows.Count} label rows but the FER2013 data has {fer2013.Count}; FER+ joins by row order and needs the original fer2013.csv");
        }
        var classes = EmotionClasses.Fer2013.Count;
        var toFer2013 = EmotionClasses.FerPlus.Select(name => EmotionClasses.IndexOf(EmotionClasses.Fer2013, name)).ToArray();
        var soft = new float[fer2013.Count * classes];
        var voted = new List<int>(rows.Count);
        var votedLabels = new List<int>(rows.Count);
        for (var i = 0; i < rows.Count; i++)
        {
            if (rows[i].Split != fer2013.Splits[i])
            {
                throw new DatasetFormatException(ferPlusPath, rows[i].Line,
                    $"Usage '{rows[i].Split}' does not match row {i + 1} of the FER2013 data ('{fer2013.Splits[i]}'); the files are not in the same order");
            }
            var target = soft.AsSpan(i * classes, classes);
            var votes = Target(rows[i], FerPlusLabelMode.Distribution);
            var mapped = new float[classes];
            if (votes != null)
            {
                for (var k = 0; k < votes.Length; k++)
                {
                    if (toFer2013[k] >= 0) mapped[toFer2013[k]] += votes[k];
                }
            }
            var mass = mapped.Sum();
            if (mass <= 0)
            {
                target[fer2013.Labels[i]] = 1f;
                continue;
            }
            for (var c = 0; c < classes; c++)
            {
                target[c] = (1 - Fer2013SoftLabelWeight) * mapped[c] / mass;
            }
            target[fer2013.Labels[i]] += Fer2013SoftLabelWeight;
            voted.Add(i);
            votedLabels.Add(EmotionClasses.IndexOf(EmotionClasses.FerPlus, EmotionClasses.Fer2013[ArgMax(mapped)]));
        }
        CheckRowOrder(fer2013, voted, [.. votedLabels], ferPlusPath);
        var report = new DatasetLoadReport();
        report.AddNote($"FER+ ({FerPlusLabelMode.Fer2013Soft}): {voted.Count} faces have targets mixed {Fer2013SoftLabelWeight:0.##} original label + FER+ votes, {fer2013.Count - voted.Count} keep their original label");
        return new FaceDataset(fer2013.ClassNames, fer2013.Pixels.ToArray(), [.. fer2013.Labels], [.. fer2013.Splits], fer2013.Origins?.ToArray(), soft, report);
    }

    /// <summary>Fewest faces labelled by both files before their agreement says anything about row order.</summary>
    public const int RowOrderCheckMinimumFaces = 200;

    /// <summary>
    /// Agreement beyond chance (Cohen's kappa) below which the two files cannot be in the same row order.
    /// Rows joined at random agree only by chance (kappa near 0: about 18 % of faces for FER2013's and
    /// FER+'s class frequencies), while the same faces relabelled agree far more, so a threshold this low
    /// catches a reshuffled CSV without rejecting a genuine, noisy relabelling.
    /// </summary>
    public const double RowOrderCheckMinimumKappa = 0.2;

    /// <summary>
    /// Fails when the FER+ labels look joined to the wrong faces. FER+ identifies a face only by its row
    /// number in the original <c>fer2013.csv</c>; a CSV rebuilt from the image-folder release, or reshuffled
    /// within its splits, keeps the row count and the Usage column, so only the labels can tell.
    /// </summary>
    private static void CheckRowOrder(FaceDataset fer2013, List<int> rows, int[] ferPlusLabels, string ferPlusPath)
    {
        if (!fer2013.ClassNames.SequenceEqual(EmotionClasses.Fer2013))
        {
            return;
        }
        var pairs = new List<(int Fer2013, int FerPlus)>(rows.Count);
        for (var k = 0; k < rows.Count; k++)
        {
            var fer2013Class = EmotionClasses.IndexOf(EmotionClasses.Fer2013, EmotionClasses.FerPlus[ferPlusLabels[k]]);
            if (fer2013Class >= 0)
            {
                pairs.Add((fer2013.Labels[rows[k]], fer2013Class));
            }
        }
        if (pairs.Count < RowOrderCheckMinimumFaces)
        {
            return;
        }
        var (observed, chance) = Agreement(pairs, EmotionClasses.Fer2013.Count);
        var kappa = chance < 1 ? (observed - chance) / (1 - chance) : 1;
        if (kappa < RowOrderCheckMinimumKappa)
        {
            var shownKappa = Math.Round(kappa, 2) + 0.0; // adding +0 turns a rounded -0 into 0, so no "-0.00"
            throw new DatasetFormatException(ferPlusPath, 0,
                $"its labels agree with the FER2013 labels on {observed:P0} of the {pairs.Count:N0} faces both label, "
                + $"about as often as chance ({chance:P0}; Cohen's kappa {shownKappa:F2}), so its rows are not in the FER2013 file's order. "
                + "FER+ joins by row order and needs the original fer2013.csv; a reshuffled or rebuilt CSV (such as one made from the image-folder release) does not keep it");
        }
    }

    /// <summary>The share of pairs that agree, and the share expected if the two labels were independent.</summary>
    private static (double Observed, double Chance) Agreement(List<(int A, int B)> pairs, int classCount)
    {
        var countsA = new int[classCount];
        var countsB = new int[classCount];
        var same = 0;
        foreach (var (a, b) in pairs)
        {
            countsA[a]++;
            countsB[b]++;
            if (a == b) same++;
        }
        double n = pairs.Count;
        var chance = Enumerable.Range(0, classCount).Sum(c => countsA[c] / n * (countsB[c] / n));
        return (same / n, chance);
    }

    private static int ArgMax(float[] values)
    {
        var best = 0;
        for (var i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }
        return best;
    }
}
