namespace FerSharp.Data;

/// <summary>Bad input in a dataset file, with the place it was found: <c>file:line: reason</c>.</summary>
public sealed class DatasetFormatException : FormatException
{
    public DatasetFormatException(string file, long line, string reason, string? field = null)
        : base(line > 0 ? $"{file}:{line}: {reason}" : $"{file}: {reason}")
    {
        File = file;
        Line = line;
        Field = field;
        Reason = reason;
    }

    public DatasetFormatException(string file, string reason, Exception inner)
        : base($"{file}: {reason}", inner)
    {
        File = file;
        Reason = reason;
    }

    public string File { get; }
    /// <summary>1-based line number, or 0 when the problem is not tied to a line.</summary>
    public long Line { get; }
    public string? Field { get; }
    public string Reason { get; }
}
