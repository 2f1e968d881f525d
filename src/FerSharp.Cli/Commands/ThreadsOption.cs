using System.CommandLine;

namespace FerSharp.Cli.Commands;

/// <summary><c>--threads</c>: the expression network's threads per call, for the commands that run one photo or frame at a time.</summary>
internal static class ThreadsOption
{
    public const int Max = 256;

    public static Option<int> Create() => new("--threads")
    {
        Description = "Threads of the expression network per photo or frame: every core by default, which classifies a photo's faces in about half the time on 2 cores. The face detector's looks use the cores side by side either way. With several fer processes at once on one machine (fer predict --shard), give each its share of the cores.",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    public static int Read(ParseResult parse, Option<int> option) => OptionRules.Within(parse, option, 1, Max, "threads");
}
