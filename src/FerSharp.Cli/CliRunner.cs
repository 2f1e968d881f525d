using System.CommandLine;
using System.CommandLine.Parsing;

using FerSharp.Data;

using Spectre.Console;

namespace FerSharp.Cli;

/// <summary>Runs the command line and turns expected failures into one clear line and an exit code.</summary>
internal static partial class CliRunner
{
    public const int ExitOk = 0;
    public const int ExitFailure = 1;
    public const int ExitBadInput = 2;
    public const int ExitCancelled = 130;

    public static int Run(RootCommand root, string[] args)
    {
        if (Console.IsOutputRedirected)
        {
            // Spectre assumes 80 columns when redirected; tables then wrap mid-word in logs and CI output.
            AnsiConsole.Profile.Width = 160;
        }
        var parse = root.Parse(args);
        if (ParseProblem(parse) is { } problem)
        {
            var command = string.Join(' ', CommandPath(parse.CommandResult));
            Console.Error.WriteLine($"fer: error: {problem} (see '{command} --help')");
            return ExitBadInput;
        }
        try
        {
            // On SIGTERM or Ctrl+C the action's token is cancelled and the process waits for the action to end:
            // long enough for fer serve's graceful stop (its --shutdown-timeout is at most an hour, 20 s by default).
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = TimeSpan.FromMinutes(61) });
        }
        catch (Exception ex) when (Describe(ex) is { } message)
        {
            AnsiConsole.Console.Profile.Out.Writer.Flush();
            Console.Error.WriteLine($"fer: error: {message}");
            return ex is OperationCanceledException ? ExitCancelled : ExitBadInput;
        }
    }

    /// <summary>
    /// The first thing wrong with the command line, as one line that names the option and what it takes; null
    /// when it parsed. A positional value that looks like an option (<c>--bogus</c>) is refused here, before
    /// any slow work, rather than taken as a file name.
    /// </summary>
    internal static string? ParseProblem(ParseResult parse)
    {
        if (parse.Action is System.CommandLine.Help.HelpAction || parse.Action?.GetType().Name.Contains("Version", StringComparison.Ordinal) == true) return null;
        if (parse.Errors.Count > 0)
        {
            // A mistyped command also leaves its command missing: name the mistake, not the consequence.
            return Describe(parse.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? parse.Errors[0]);
        }
        foreach (var argument in parse.CommandResult.Children.OfType<ArgumentResult>())
        {
            if (argument.Tokens.FirstOrDefault(t => t.Value.StartsWith("--", StringComparison.Ordinal) && t.Value.Length > 2) is { } token
                && !File.Exists(token.Value) && !Directory.Exists(token.Value))
            {
                return $"unknown option '{token.Value}'";
            }
        }
        return null;
    }

    private static string Describe(ParseError error)
    {
        var message = string.Join(' ', error.Message.Split(['\n', '\r', '\t'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        if (error.SymbolResult is OptionResult { Option: var option } result && option.ValueType is var type)
        {
            var enumType = Nullable.GetUnderlyingType(type) ?? type;
            var given = string.Join(' ', result.Tokens.Select(t => t.Value));
            if (enumType.IsEnum)
            {
                return $"{option.Name}: '{given}' is not one of {string.Join(", ", Enum.GetNames(enumType))}";
            }
            if (message.StartsWith("Cannot parse argument", StringComparison.Ordinal))
            {
                return $"{option.Name}: '{given}' is not {Article(enumType)}";
            }
            if (NotAmong().Match(message) is { Success: true } among)
            {
                var allowed = among.Groups[2].Value.Split('\'', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(v => v.Length > 0);
                return $"{option.Name}: '{among.Groups[1].Value}' is not one of {string.Join(", ", allowed)}";
            }
            if (!message.Contains(option.Name, StringComparison.Ordinal)) return $"{option.Name}: {message}";
        }
        if (message.StartsWith("Unrecognized command or argument", StringComparison.Ordinal))
        {
            return message.Replace("Unrecognized command or argument", "unknown command, option or argument", StringComparison.Ordinal).TrimEnd('.');
        }
        if (message.StartsWith("Required command was not provided", StringComparison.Ordinal)) return "no command given";
        if (MissingArgument().Match(message) is { Success: true } missing) return $"missing <{missing.Groups[1].Value}>";
        return message.TrimEnd('.');
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^Argument '(.*)' not recognized\. Must be one of: (.*)$")]
    private static partial System.Text.RegularExpressions.Regex NotAmong();

    [System.Text.RegularExpressions.GeneratedRegex(@"^Required argument '(.*)' missing")]
    private static partial System.Text.RegularExpressions.Regex MissingArgument();

    private static string Article(Type type) => type == typeof(int) || type == typeof(long) ? "a whole number"
        : type == typeof(double) || type == typeof(float) ? "a number"
        : type == typeof(bool) ? "true or false"
        : $"a {type.Name}";

    private static IEnumerable<string> CommandPath(CommandResult? result)
    {
        var names = new List<string>();
        for (var current = result; current is not null; current = current.Parent as CommandResult)
        {
            names.Insert(0, current.Parent is null ? "fer" : current.Command.Name);
        }
        return names;
    }

    /// <summary>The user-facing message for failures caused by input or environment; null for bugs.</summary>
    private static string? Describe(Exception ex) => ex switch
    {
        DatasetFormatException or FileNotFoundException or DirectoryNotFoundException
            or InvalidDataException or ArgumentException or IOException or UserFacingException => ex.Message,
        OperationCanceledException => "cancelled",
        UnauthorizedAccessException => ex.Message,
        _ when WithoutLibtorch(ex) => "this build of fer has no libtorch (a recognition-only build, such as the container image): predict, video and serve work; training, evaluation and export need the full build (dotnet publish src/FerSharp.Cli without -p:FerSharpRecognitionOnly=true)",
        _ => null,
    };

    /// <summary>Whether the failure is libtorch's native library missing, as in a recognition-only build.</summary>
    private static bool WithoutLibtorch(Exception ex)
    {
        for (var e = (Exception?)ex; e is not null; e = e.InnerException)
        {
            if (e is DllNotFoundException && (e.Message.Contains("torch", StringComparison.OrdinalIgnoreCase) || e.Message.Contains("c10", StringComparison.Ordinal))) return true;
            if (e is NotSupportedException && e.Message.Contains("libtorch", StringComparison.OrdinalIgnoreCase)) return true;
        }
        return false;
    }
}

/// <summary>A failure whose message is meant for the user as it is (no stack trace).</summary>
internal sealed class UserFacingException(string message) : Exception(message);
