using System.CommandLine;
using System.Globalization;

namespace FerSharp.Cli.Commands;

/// <summary>
/// Range checks of options that the type alone does not make safe, run before any slow work (loading data or a
/// model) and worded alike: <c>--name: expected …, got …</c>, exit code 2.
/// </summary>
internal static class OptionRules
{
    public static int AtLeast(ParseResult parse, Option<int> option, int min, string unit)
    {
        var value = parse.GetValue(option);
        if (value < min) throw Refuse(option, $"{min} or more {unit}", value.ToString(CultureInfo.InvariantCulture));
        return value;
    }

    public static int Within(ParseResult parse, Option<int> option, int min, int max, string unit)
    {
        var value = parse.GetValue(option);
        if (value < min || value > max) throw Refuse(option, $"{min} to {max} {unit}", value.ToString(CultureInfo.InvariantCulture));
        return value;
    }

    /// <summary>A number from <paramref name="min"/> to <paramref name="max"/>; NaN and infinities are refused.</summary>
    public static double Within(ParseResult parse, Option<double> option, double min, double max, string expected)
    {
        var value = parse.GetValue(option);
        if (!(value >= min && value <= max)) throw Refuse(option, expected, value.ToString(CultureInfo.InvariantCulture));
        return value;
    }

    /// <summary>
    /// A name that becomes one folder (a run under --runs-dir): no path separators, no <c>..</c>, so a name can never
    /// put a run's checkpoints and package outside the folder it names.
    /// </summary>
    public static string? FolderName(ParseResult parse, Option<string?> option)
    {
        var value = parse.GetValue(option);
        if (value == null) return null;
        if (value.Length == 0 || value is "." or ".." || value.IndexOfAny(['/', '\\', '\0']) >= 0 || value.Trim() != value)
        {
            throw Refuse(option, "a folder name, not a path (no '/'; not '.' or '..')", $"'{value}'");
        }
        return value;
    }

    /// <summary>
    /// A folder a command writes into (created if missing): an existing file there is refused now, by the option's
    /// name, rather than by .NET after the command's slow work, and is left as it was.
    /// </summary>
    public static string? FolderToWrite(string? path, string what)
    {
        if (path != null && File.Exists(path)) throw new UserFacingException($"{what}: {path} is a file; expected a folder to write into");
        return path;
    }

    private static UserFacingException Refuse(Option option, string expected, string got) => new($"{option.Name}: expected {expected}, got {got}");
}
