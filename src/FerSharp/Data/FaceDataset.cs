namespace FerSharp.Data;

/// <summary>
/// Faces held in memory as 48x48 grayscale bytes, with a hard label per face and, for FER+, an optional
/// vote distribution. Cheap to subset; converted to tensors only when a consumer asks.
/// </summary>
public sealed class FaceDataset
{
    public const int ImageSize = 48;
    public const int PixelsPerImage = ImageSize * ImageSize;

    private readonly byte[] _pixels;

    public FaceDataset(
        IReadOnlyList<string> classNames,
        byte[] pixels,
        int[] labels,
        DataSplit[] splits,
        string[]? origins = null,
        float[]? labelDistributions = null,
        DatasetLoadReport? report = null)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(splits);
        if (pixels.Length != labels.Length * PixelsPerImage)
        {
            throw new ArgumentException($"pixels hold {pixels.Length} bytes; {labels.Length} faces need {labels.Length * PixelsPerImage}");
        }
        if (splits.Length != labels.Length || (origins != null && origins.Length != labels.Length))
        {
            throw new ArgumentException("labels, splits and origins must have one entry per face");
        }
        if (labelDistributions != null && labelDistributions.Length != labels.Length * classNames.Count)
        {
            throw new ArgumentException("label distributions must hold one row of class probabilities per face");
        }
        foreach (var label in labels)
        {
            if ((uint)label >= (uint)classNames.Count)
            {
                throw new ArgumentException($"label {label} is outside 0..{classNames.Count - 1}");
            }
        }
        ClassNames = classNames;
        _pixels = pixels;
        Labels = labels;
        Splits = splits;
        Origins = origins;
        LabelDistributions = labelDistributions;
        Report = report ?? new DatasetLoadReport();
    }

    public IReadOnlyList<string> ClassNames { get; }
    public int Count => Labels.Count;
    public int ClassCount => ClassNames.Count;

    /// <summary>Row-major 48x48 bytes of every face, face after face.</summary>
    public ReadOnlySpan<byte> Pixels => _pixels;
    public IReadOnlyList<int> Labels { get; }
    public IReadOnlyList<DataSplit> Splits { get; }
    /// <summary>The splits at least one face belongs to, in split order (what a model trained on it has seen).</summary>
    public IReadOnlyList<DataSplit> SplitsPresent => [.. Splits.Distinct().Order()];
    /// <summary>Where each face came from (<c>file:line</c> or an image path), for error messages and reports.</summary>
    public IReadOnlyList<string>? Origins { get; }
    /// <summary>FER+ vote distributions, <see cref="ClassCount"/> floats per face; null for hard labels only.</summary>
    public float[]? LabelDistributions { get; }
    public DatasetLoadReport Report { get; }

    public ReadOnlySpan<byte> Face(int index) => _pixels.AsSpan(index * PixelsPerImage, PixelsPerImage);

    /// <summary>Faces of the given splits, in their original order.</summary>
    public FaceDataset Subset(params DataSplit[] splits)
    {
        var wanted = new HashSet<DataSplit>(splits);
        var indices = Enumerable.Range(0, Count).Where(i => wanted.Contains(Splits[i])).ToArray();
        return Select(indices);
    }

    /// <summary>The first <paramref name="count"/> faces (FER2013 rows are shuffled within a split, so this is a fair sample for quick runs).</summary>
    public FaceDataset Take(int count) => count >= Count ? this : Select(Enumerable.Range(0, count).ToArray());

    /// <summary>These faces followed by <paramref name="other"/>'s (same classes), e.g. Training and PublicTest for a final fit.</summary>
    public FaceDataset Concat(FaceDataset other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (!ClassNames.SequenceEqual(other.ClassNames))
        {
            throw new ArgumentException($"cannot join datasets with different classes ({string.Join(",", ClassNames)} and {string.Join(",", other.ClassNames)})");
        }
        // Origins and vote distributions survive only when both sides have them.
        var origins = Origins != null && other.Origins != null ? Origins.Concat(other.Origins).ToArray() : null;
        var dist = LabelDistributions != null && other.LabelDistributions != null ? [.. LabelDistributions, .. other.LabelDistributions] : (float[]?)null;
        return new FaceDataset(ClassNames, [.. _pixels, .. other._pixels], [.. Labels, .. other.Labels], [.. Splits, .. other.Splits], origins, dist, Report);
    }

    public FaceDataset Select(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        var pixels = new byte[indices.Count * PixelsPerImage];
        var labels = new int[indices.Count];
        var splits = new DataSplit[indices.Count];
        var origins = Origins == null ? null : new string[indices.Count];
        var dist = LabelDistributions == null ? null : new float[indices.Count * ClassCount];
        for (var k = 0; k < indices.Count; k++)
        {
            var i = indices[k];
            Face(i).CopyTo(pixels.AsSpan(k * PixelsPerImage));
            labels[k] = Labels[i];
            splits[k] = Splits[i];
            if (origins != null) origins[k] = Origins![i];
            if (dist != null) Array.Copy(LabelDistributions!, i * ClassCount, dist, k * ClassCount, ClassCount);
        }
        return new FaceDataset(ClassNames, pixels, labels, splits, origins, dist, Report);
    }

    /// <summary>Counts per split (rows) and class (columns).</summary>
    public int[,] CountsBySplitAndClass()
    {
        var counts = new int[DataSplits.All.Count, ClassCount];
        for (var i = 0; i < Count; i++)
        {
            counts[(int)Splits[i], Labels[i]]++;
        }
        return counts;
    }

    public int[] CountsByClass()
    {
        var counts = new int[ClassCount];
        foreach (var label in Labels) counts[label]++;
        return counts;
    }


}

/// <summary>What a load skipped or changed, so a user sees it rather than losing rows silently.</summary>
public sealed class DatasetLoadReport
{
    private readonly List<string> _skipped = [];
    private readonly List<string> _notes = [];

    /// <summary>One <c>place: reason</c> per skipped row or file.</summary>
    public IReadOnlyList<string> Skipped => _skipped;
    public IReadOnlyList<string> Notes => _notes;

    public void AddSkipped(string message) => _skipped.Add(message);
    public void AddNote(string message) => _notes.Add(message);
}
