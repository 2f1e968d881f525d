using System.Globalization;
using System.Text;
using System.Text.Json;

using FerSharp.Inference;

namespace FerSharp.Cli.Commands;

/// <summary>One input of <c>fer predict</c> and what became of it.</summary>
internal sealed record FileResult(string File, IReadOnlyList<FaceEmotion> Faces, string? Error);

/// <summary>
/// Writes <c>fer predict</c>'s rows as each file finishes, so that a run stopped by Ctrl+C or a killed batch
/// worker leaves a complete file for the files it finished: CSV and JSON Lines row by row, a JSON array closed
/// when the run ends or is cancelled.
/// </summary>
internal sealed class PredictionOutput : IDisposable
{
    private readonly TextWriter _writer;
    private readonly bool _ownsWriter;
    private readonly string _format;
    private readonly IReadOnlyList<string> _classes;
    private readonly string _model;
    private readonly string _engine;
    private int _written;

    private PredictionOutput(TextWriter writer, bool ownsWriter, string format, IReadOnlyList<string> classes, string model, string engine)
    {
        (_writer, _ownsWriter, _format, _classes, _model, _engine) = (writer, ownsWriter, format, classes, model, engine);
    }

    /// <param name="path">File to write (appended to when <paramref name="append"/>), or null for standard output.</param>
    public static PredictionOutput Open(string? path, bool append, string format, IReadOnlyList<string> classes, string model, string engine)
    {
        TextWriter writer;
        var fresh = true;
        if (path is null)
        {
            writer = Console.Out;
        }
        else
        {
            fresh = !append || !File.Exists(path) || new FileInfo(path).Length == 0;
            writer = new StreamWriter(new FileStream(path, append ? FileMode.Append : FileMode.CreateNew, FileAccess.Write, FileShare.Read), new UTF8Encoding(false));
        }
        var output = new PredictionOutput(writer, path is not null, format, classes, model, engine);
        if (fresh && format == "csv") output.WriteLine(CsvHeader(classes));
        if (format == "json") output._writer.Write("[");
        return output;
    }

    public static string CsvHeader(IReadOnlyList<string> classes) =>
        "file,face,x,y,width,height,emotion,confidence," + string.Join(',', classes) + ",detector_score,found,error";

    /// <summary>Writes one file's rows and flushes them, so a reader (or a resumed run) sees them at once.</summary>
    public void Write(FileResult result)
    {
        switch (_format)
        {
            case "csv":
                _writer.Write(CsvRows(result));
                break;
            case "jsonl":
                WriteLine(JsonSerializer.Serialize(JsonOf(result)));
                break;
            case "json":
                _writer.Write((_written == 0 ? "\n" : ",\n") + JsonSerializer.Serialize(JsonOf(result), CliJson.Indented));
                break;
        }
        _written++;
        _writer.Flush();
    }

    private Dictionary<string, object?> JsonOf(FileResult r)
    {
        var doc = new Dictionary<string, object?>
        {
            ["file"] = r.File,
            ["model"] = _model,
            ["engine"] = _engine,
            ["faces"] = r.Faces.Select((f, i) => new Dictionary<string, object?>
            {
                ["box"] = new { x = f.Box.X, y = f.Box.Y, width = f.Box.Width, height = f.Box.Height },
                ["emotion"] = f.Emotion,
                ["confidence"] = Math.Round(f.Confidence, 4),
                ["probabilities"] = f.Probabilities.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 4)),
                ["found"] = FaceJson.FoundName(f.Finding),
                ["detector_score"] = FaceJson.ScoreOf(f.Box),
            }).ToList(),
        };
        if (r.Error is not null) doc["error"] = r.Error;
        return doc;
    }


    /// <summary>A row per face; a file without a face or with an error still gets a row (face 0), so every input is accounted for.</summary>
    private string CsvRows(FileResult r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        if (r.Faces.Count == 0)
        {
            // Empty box, emotion and confidence, then one empty field per class, the score and 'found': the error last.
            sb.Append(Csv(r.File)).Append(",0,,,,,,").Append(new string(',', _classes.Count + 3)).Append(Csv(r.Error ?? "")).Append('\n');
            return sb.ToString();
        }
        for (var i = 0; i < r.Faces.Count; i++)
        {
            var f = r.Faces[i];
            sb.Append(inv, $"{Csv(r.File)},{i + 1},{f.Box.X},{f.Box.Y},{f.Box.Width},{f.Box.Height},{f.Emotion},{f.Confidence:F4}");
            foreach (var c in _classes) sb.Append(inv, $",{f.Probabilities[c]:F4}");
            sb.Append(',').Append(FaceJson.ScoreOf(f.Box) is { } score ? score.ToString("0.####", inv) : "").Append(',').Append(FaceJson.FoundName(f.Finding)).Append(",\n");
        }
        return sb.ToString();
    }

    internal static string Csv(string value) =>
        value.IndexOfAny([',', '"', '\n']) >= 0 ? $"\"{value.Replace("\"", "\"\"", StringComparison.Ordinal)}\"" : value;

    private void WriteLine(string line)
    {
        _writer.Write(line);
        _writer.Write('\n');
    }

    /// <summary>Closes a JSON array (also after a cancel, so the file parses) and the file.</summary>
    public void Dispose()
    {
        if (_format == "json") _writer.Write(_written == 0 ? "]\n" : "\n]\n");
        _writer.Flush();
        if (_ownsWriter) _writer.Dispose();
    }

    /// <summary>
    /// The inputs an earlier run already wrote to <paramref name="path"/> (CSV or JSON Lines), for --resume. A
    /// last line cut short by a killed worker is removed first, so the file stays whole and the file is done again.
    /// </summary>
    public static HashSet<string> FilesDone(string path, string format)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        if (!File.Exists(path)) return done;
        TrimToLastLine(path);
        var first = true;
        foreach (var line in File.ReadLines(path))
        {
            if (line.Length == 0) continue;
            if (format == "csv")
            {
                if (first && line.StartsWith("file,", StringComparison.Ordinal)) { first = false; continue; }
                done.Add(CsvFirstField(line));
            }
            else
            {
                try
                {
                    using var doc = JsonDocument.Parse(line);
                    if (doc.RootElement.TryGetProperty("file", out var file) && file.GetString() is { } name) done.Add(name);
                }
                catch (JsonException ex)
                {
                    throw new InvalidDataException($"{path}: a line is not JSON ({ex.Message}); --resume needs the JSON Lines this command writes");
                }
            }
            first = false;
        }
        return done;
    }

    private static void TrimToLastLine(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        var length = stream.Length;
        if (length == 0) return;
        var position = length - 1;
        stream.Position = position;
        if (stream.ReadByte() == '\n') return;
        while (position > 0)
        {
            stream.Position = --position;
            if (stream.ReadByte() == '\n') break;
        }
        stream.SetLength(position == 0 ? 0 : position + 1);
    }

    private static string CsvFirstField(string line)
    {
        if (!line.StartsWith('"')) return line.Split(',')[0];
        var sb = new StringBuilder();
        for (var i = 1; i < line.Length; i++)
        {
            if (line[i] == '"')
            {
                if (i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i++; continue; }
                break;
            }
            sb.Append(line[i]);
        }
        return sb.ToString();
    }
}

/// <summary><c>--shard i/N</c>: a stable share of the inputs, the same on every machine given the same paths.</summary>
internal readonly record struct Shard(int Index, int Count)
{
    public static Shard All { get; } = new(0, 1);

    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var index)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var count) || count < 1 || index >= count)
        {
            throw new UserFacingException($"--shard: expected i/N with 0 <= i < N (e.g. 0/4, as Kubernetes' JOB_COMPLETION_INDEX/N), got '{text}'");
        }
        return new Shard(index, count);
    }

    /// <summary>By a hash of the path as given (FNV-1a over its UTF-8 bytes): independent of the listing order and of .NET's per-process string hashing.</summary>
    public bool Takes(string path)
    {
        if (Count == 1) return true;
        var hash = 2166136261u;
        foreach (var b in Encoding.UTF8.GetBytes(path))
        {
            hash = unchecked((hash ^ b) * 16777619u);
        }
        return hash % (uint)Count == (uint)Index;
    }
}
