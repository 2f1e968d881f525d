using System.Collections.Concurrent;
using System.Formats.Tar;

namespace FerSharp.Data;

/// <summary>
/// Reads the image-folder layout <c>&lt;root&gt;/&lt;split&gt;/&lt;class&gt;/*.(png|jpg|jpeg|bmp)</c>, from a folder or
/// straight from a (gzipped) tar archive of one. The Kaggle file-name prefix (<c>PrivateTest_789.jpg</c>)
/// gives the original split and wins over the folder name, so <c>--split PrivateTest</c> works on folders.
/// </summary>
public static class ImageFolderDataset
{
    private static readonly HashSet<string> ImageExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".png", ".jpg", ".jpeg", ".bmp",
    };

    private sealed record Entry(string Origin, string SplitFolder, string ClassFolder, string FileName, Func<byte[]> Read);

    public static FaceDataset LoadFolder(string root, bool skipBadFiles = false, CancellationToken cancellationToken = default)
    {
        if (!Directory.Exists(root))
        {
            throw new DirectoryNotFoundException($"{root}: no such folder");
        }
        var resolved = ResolveRoot(root);
        var entries = new List<Entry>();
        foreach (var splitDir in Directory.EnumerateDirectories(resolved).Order(StringComparer.Ordinal))
        {
            var splitName = Path.GetFileName(splitDir);
            foreach (var classDir in Directory.EnumerateDirectories(splitDir).Order(StringComparer.Ordinal))
            {
                var className = Path.GetFileName(classDir);
                foreach (var file in Directory.EnumerateFiles(classDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                {
                    if (ImageExtensions.Contains(Path.GetExtension(file)))
                    {
                        var path = file;
                        entries.Add(new Entry(path, splitName, className, Path.GetFileName(file), () => File.ReadAllBytes(path)));
                    }
                }
            }
        }
        if (entries.Count == 0)
        {
            throw new DatasetFormatException(root, 0,
                "no images found; expected <root>/<split>/<class>/*.png|jpg|jpeg|bmp (e.g. train/happy/Training_1.jpg)");
        }
        return Build(root, entries, skipBadFiles, cancellationToken);
    }

    /// <summary>Reads the same layout from a tar or tar.gz archive without extracting it.</summary>
    public static FaceDataset LoadArchive(string archive, bool skipBadFiles = false, CancellationToken cancellationToken = default)
    {
        var entries = new List<Entry>();
        using (var stream = DataFiles.OpenMaybeGzip(archive))
        using (var reader = new TarReader(stream))
        {
            TarEntry? tarEntry;
            while ((tarEntry = ReadEntry(reader, archive)) != null)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (tarEntry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || tarEntry.DataStream == null)
                {
                    continue;
                }
                var name = tarEntry.Name.Replace('\\', '/');
                var parts = name.Split('/', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length < 3 || !ImageExtensions.Contains(Path.GetExtension(name)))
                {
                    continue;
                }
                using var ms = new MemoryStream();
                tarEntry.DataStream.CopyTo(ms);
                var bytes = ms.ToArray();
                entries.Add(new Entry($"{archive}!{name}", parts[^3], parts[^2], parts[^1], () => bytes));
            }
        }
        if (entries.Count == 0)
        {
            throw new DatasetFormatException(archive, 0, "archive holds no images in <split>/<class>/ folders");
        }
        return Build(archive, entries, skipBadFiles, cancellationToken);
    }

    private static TarEntry? ReadEntry(TarReader reader, string archive)
    {
        try
        {
            return reader.GetNextEntry();
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or EndOfStreamException)
        {
            throw new DatasetFormatException(archive, "the archive is corrupt or truncated", ex);
        }
    }

    // Kaggle archives nest the layout one level down (fer2013/train/...): follow a lone subfolder.
    private static string ResolveRoot(string root)
    {
        var current = root;
        for (var depth = 0; depth < 3; depth++)
        {
            var subdirs = Directory.GetDirectories(current);
            if (subdirs.Any(d => IsSplitFolder(Path.GetFileName(d))) || subdirs.Length != 1)
            {
                return current;
            }
            current = subdirs[0];
        }
        return current;
    }

    private static bool IsSplitFolder(string name) => SplitOfFolder(name) != null;

    /// <summary>Split a folder name stands for. A bare "test" is taken as the reporting split (PrivateTest).</summary>
    public static DataSplit? SplitOfFolder(string name) => name.ToLowerInvariant() switch
    {
        "train" or "training" => DataSplit.Training,
        "val" or "valid" or "validation" or "publictest" or "public" => DataSplit.PublicTest,
        "test" or "privatetest" or "private" => DataSplit.PrivateTest,
        _ => null,
    };

    private static FaceDataset Build(string source, List<Entry> entries, bool skipBadFiles, CancellationToken cancellationToken)
    {
        var report = new DatasetLoadReport();
        foreach (var folder in entries.Select(e => e.SplitFolder).Distinct())
        {
            if (SplitOfFolder(folder) == null && entries.Any(e => e.SplitFolder == folder && DataSplits.FromFileNamePrefix(e.FileName) == null))
            {
                throw new DatasetFormatException(source, 0,
                    $"folder '{folder}' is not a split: expected train, test, val, PublicTest or PrivateTest");
            }
        }
        foreach (var folder in entries.Select(e => e.ClassFolder).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            if (EmotionClasses.Canonical(folder) == null)
            {
                throw new DatasetFormatException(source, 0,
                    $"class folder '{folder}' is not a known expression; expected one of {string.Join(", ", EmotionClasses.FerPlus)} (or a synonym such as anger, fearful, happiness)");
            }
        }
        var canonical = entries.Select(e => EmotionClasses.Canonical(e.ClassFolder)!).ToArray();
        var classNames = canonical.Contains("contempt") ? EmotionClasses.FerPlus : EmotionClasses.Fer2013;

        var pixels = new byte[entries.Count * FaceDataset.PixelsPerImage];
        var ok = new bool[entries.Count];
        var failures = new ConcurrentBag<(int Index, string Message)>();
        Parallel.For(0, entries.Count, new ParallelOptions { CancellationToken = cancellationToken }, i =>
        {
            byte[]? face;
            string reason = "not a readable image";
            try
            {
                face = FaceImages.DecodeTo48Gray(entries[i].Read());
            }
            catch (Exception ex) when (ex is IOException or InvalidDataException)
            {
                face = null;
                reason = ex.Message;
            }
            if (face == null)
            {
                failures.Add((i, $"{entries[i].Origin}: {reason}"));
                return;
            }
            face.CopyTo(pixels, i * FaceDataset.PixelsPerImage);
            ok[i] = true;
        });
        if (!failures.IsEmpty)
        {
            var sorted = failures.OrderBy(f => f.Index).Select(f => f.Message).ToList();
            if (!skipBadFiles)
            {
                var shown = string.Join(Environment.NewLine, sorted.Take(10));
                var more = sorted.Count > 10 ? $"{Environment.NewLine}(and {sorted.Count - 10} more)" : "";
                throw new DatasetFormatException(source, 0,
                    $"{sorted.Count} unreadable image file(s):{Environment.NewLine}{shown}{more}");
            }
            foreach (var message in sorted) report.AddSkipped(message);
        }

        var keep = Enumerable.Range(0, entries.Count).Where(i => ok[i]).ToArray();
        var outPixels = new byte[keep.Length * FaceDataset.PixelsPerImage];
        var labels = new int[keep.Length];
        var splits = new DataSplit[keep.Length];
        var origins = new string[keep.Length];
        for (var k = 0; k < keep.Length; k++)
        {
            var i = keep[k];
            Buffer.BlockCopy(pixels, i * FaceDataset.PixelsPerImage, outPixels, k * FaceDataset.PixelsPerImage, FaceDataset.PixelsPerImage);
            labels[k] = EmotionClasses.IndexOf(classNames, canonical[i]);
            splits[k] = DataSplits.FromFileNamePrefix(entries[i].FileName) ?? SplitOfFolder(entries[i].SplitFolder)!.Value;
            origins[k] = entries[i].Origin;
        }
        return new FaceDataset(classNames, outPixels, labels, splits, origins, report: report);
    }
}
