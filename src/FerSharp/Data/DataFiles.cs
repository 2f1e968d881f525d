using System.IO.Compression;

namespace FerSharp.Data;

/// <summary>What a dataset path holds, detected from its content rather than its name.</summary>
public enum DataFileKind
{
    Folder,
    Fer2013Csv,
    FerPlusCsv,
    TarArchive,
    Unknown,
}

internal static class DataFiles
{
    /// <summary>Opens a file for reading, transparently decompressing gzip (detected by its magic bytes).</summary>
    public static Stream OpenMaybeGzip(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        Span<byte> magic = stackalloc byte[2];
        var read = file.Read(magic);
        file.Position = 0;
        if (read == 2 && magic[0] == 0x1f && magic[1] == 0x8b)
        {
            return new BufferedStream(new GZipStream(file, CompressionMode.Decompress), 1 << 16);
        }
        return file;
    }

    public static DataFileKind Detect(string path)
    {
        if (Directory.Exists(path))
        {
            return DataFileKind.Folder;
        }
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: no such file or folder", path);
        }
        using var stream = OpenMaybeGzip(path);
        var head = new byte[512];
        var total = 0;
        try
        {
            int n;
            while (total < head.Length && (n = stream.Read(head, total, head.Length - total)) > 0)
            {
                total += n;
            }
        }
        catch (InvalidDataException)
        {
            return DataFileKind.Unknown;
        }
        if (total >= 262 && System.Text.Encoding.ASCII.GetString(head, 257, 5) == "ustar")
        {
            return DataFileKind.TarArchive;
        }
        var text = System.Text.Encoding.UTF8.GetString(head, 0, total).TrimStart('\uFEFF');
        var firstLine = text.Split('\n')[0].Trim().ToLowerInvariant();
        if (firstLine.StartsWith("usage,image name", StringComparison.Ordinal))
        {
            return DataFileKind.FerPlusCsv;
        }
        if (firstLine.Contains("pixels", StringComparison.Ordinal) || firstLine.StartsWith("emotion", StringComparison.Ordinal))
        {
            return DataFileKind.Fer2013Csv;
        }
        return DataFileKind.Unknown;
    }
}
