namespace FerSharp.Data;

/// <summary>Options for <see cref="Fer2013Dataset.Load(string, DatasetLoadOptions?, CancellationToken)"/>.</summary>
public sealed record DatasetLoadOptions
{
    /// <summary>Skip malformed rows / unreadable images (and list them in the report) instead of failing.</summary>
    public bool SkipBadRows { get; init; }
    /// <summary>Only these splits; null or empty means all.</summary>
    public IReadOnlyList<DataSplit>? Splits { get; init; }
    /// <summary>Path of <c>fer2013new.csv</c> to relabel the data with FER+ votes.</summary>
    public string? FerPlusLabels { get; init; }
    public FerPlusLabelMode FerPlusMode { get; init; } = FerPlusLabelMode.Majority;
}

/// <summary>
/// Entry point for FER2013 in any of its common forms, detected by content: <c>fer2013.csv</c> (plain or
/// gzip), the image-folder layout, or a tar(.gz) archive of that layout; optionally relabelled with FER+.
/// </summary>
public static class Fer2013Dataset
{
    public static FaceDataset Load(string path, DatasetLoadOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new DatasetLoadOptions();
        var kind = DataFiles.Detect(path);
        var dataset = kind switch
        {
            DataFileKind.Fer2013Csv => new Fer2013CsvReader(path) { SkipBadRows = options.SkipBadRows }.ReadAll(cancellationToken),
            DataFileKind.Folder => ImageFolderDataset.LoadFolder(path, options.SkipBadRows, cancellationToken),
            DataFileKind.TarArchive => ImageFolderDataset.LoadArchive(path, options.SkipBadRows, cancellationToken),
            DataFileKind.FerPlusCsv => throw new DatasetFormatException(path, 0,
                "this is the FER+ label file (fer2013new.csv); load fer2013.csv and pass this file as the FER+ labels"),
            _ => throw new DatasetFormatException(path, 0,
                "not a FER2013 dataset: expected fer2013.csv(.gz), an image folder <split>/<class>/*.png, or a tar(.gz) of one"),
        };
        if (options.FerPlusLabels != null)
        {
            if (kind != DataFileKind.Fer2013Csv)
            {
                throw new ArgumentException("FER+ labels join fer2013.csv rows by order, so they need the CSV form of the data");
            }
            var report = dataset.Report;
            dataset = FerPlusLabels.Apply(dataset, options.FerPlusLabels, options.FerPlusMode, cancellationToken);
            foreach (var skipped in report.Skipped) dataset.Report.AddSkipped(skipped);
        }
        if (options.Splits is { Count: > 0 } splits)
        {
            dataset = dataset.Subset([.. splits]);
        }
        return dataset;
    }

    /// <summary>The default location of the shared data beside the project (or <c>FERSHARP_DATA</c>), if present.</summary>
    public static string? FindSharedData(string fileName = "fer2013.csv.gz")
    {
        var env = Environment.GetEnvironmentVariable("FERSHARP_DATA");
        if (!string.IsNullOrEmpty(env))
        {
            var candidate = Path.Combine(env, fileName);
            return File.Exists(candidate) ? candidate : null;
        }
        // The project sits beside shared/: look upwards from the working directory and from the binaries.
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "shared", "data", "fer2013", fileName);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }
        }
        return null;
    }
}
