using System.CommandLine;

using FerSharp.Data;

using Spectre.Console;

namespace FerSharp.Cli;

/// <summary>Runs the command line and turns expected failures into one clear line and an exit code.</summary>
internal static class CliRunner
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
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception ex) when (Describe(ex) is { } message)
        {
            AnsiConsole.Console.Profile.Out.Writer.Flush();
            Console.Error.WriteLine($"fer: error: {message}");
            return ex is OperationCanceledException ? ExitCancelled : ExitBadInput;
        }
    }

    /// <summary>The user-facing message for failures caused by input or environment; null for bugs.</summary>
    private static string? Describe(Exception ex) => ex switch
    {
        DatasetFormatException or FileNotFoundException or DirectoryNotFoundException
            or InvalidDataException or ArgumentException or IOException or UserFacingException => ex.Message,
        OperationCanceledException => "cancelled",
        UnauthorizedAccessException => ex.Message,
        _ => null,
    };
}

/// <summary>A failure whose message is meant for the user as it is (no stack trace).</summary>
internal sealed class UserFacingException(string message) : Exception(message);
