using System.Collections.Concurrent;
using System.Text.RegularExpressions;

namespace FerSharp.Tests;

/// <summary>
/// The documents cannot drift from the code: relative links resolve, the README stays short, and every
/// option of every fenced <c>./fer …</c> command is one its <c>--help</c> lists.
/// </summary>
public sealed partial class DocsTests
{
    private static readonly ConcurrentDictionary<string, string?> HelpCache = new();

    public static IEnumerable<string> Documents()
    {
        var root = Repository.Root;
        var files = new List<string> { "README.md", "models/README.md" };
        files.AddRange(Directory.GetFiles(Path.Combine(root, "docs"), "*.md", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)));
        files.AddRange(Directory.GetFiles(Path.Combine(root, "models"), "MODEL_CARD.md", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)));
        return files.Where(f => File.Exists(Path.Combine(root, f))).Order();
    }

    [Fact]
    public void The_README_is_at_most_200_lines()
    {
        var lines = File.ReadAllLines(Repository.PathOf("README.md")).Length;
        Assert.True(lines <= 200, $"README.md has {lines} lines");
    }

    [Fact]
    public void Every_relative_link_resolves()
    {
        var dead = new List<string>();
        foreach (var doc in Documents())
        {
            var folder = Path.GetDirectoryName(Repository.PathOf(doc))!;
            foreach (Match link in Link().Matches(File.ReadAllText(Repository.PathOf(doc))))
            {
                var target = link.Groups[1].Value.Split('#')[0];
                if (target.Length == 0 || target.Contains("://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal)) continue;
                var path = Path.GetFullPath(Path.Combine(folder, Uri.UnescapeDataString(target)));
                if (!File.Exists(path) && !Directory.Exists(path)) dead.Add($"{doc}: {link.Value}");
            }
        }
        Assert.True(dead.Count == 0, "dead links:\n" + string.Join('\n', dead));
    }

    [Fact]
    public void Every_fenced_fer_command_uses_options_its_help_lists()
    {
        var problems = new List<string>();
        var checkedCommands = 0;
        foreach (var doc in Documents())
        {
            foreach (var command in FencedFerCommands(File.ReadAllText(Repository.PathOf(doc))))
            {
                var words = Words(command);
                var (path, help) = Resolve(words);
                if (help is null)
                {
                    problems.Add($"{doc}: '{command}': no such command");
                    continue;
                }
                var listed = OptionName().Matches(help).Select(m => m.Value).ToHashSet();
                foreach (var option in words.Skip(path.Count).Where(w => w.StartsWith("--", StringComparison.Ordinal) && w.Length > 2).Select(w => w.Split('=')[0]))
                {
                    if (!listed.Contains(option)) problems.Add($"{doc}: '{command}': fer {string.Join(' ', path)} --help lists no {option}");
                }
                checkedCommands++;
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
        Assert.True(checkedCommands >= 20, $"only {checkedCommands} fenced ./fer commands found");
    }

    /// <summary>Lines of ```bash blocks that run ./fer (continuations joined, comments and pipes cut off).</summary>
    internal static IEnumerable<string> FencedFerCommands(string markdown)
    {
        var inBlock = false;
        var pending = "";
        foreach (var raw in markdown.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                inBlock = !inBlock && line.Trim() is "```bash" or "```sh" or "```shell";
                pending = "";
                continue;
            }
            if (!inBlock) continue;
            var text = pending + line.Trim();
            if (text.EndsWith('\\'))
            {
                pending = text[..^1] + " ";
                continue;
            }
            pending = "";
            var start = text.IndexOf("./fer ", StringComparison.Ordinal);
            if (start < 0) continue;
            var command = text[start..];
            foreach (var stop in new[] { " #", " |", " >", " &", ";" })
            {
                var at = command.IndexOf(stop, StringComparison.Ordinal);
                if (at > 0) command = command[..at];
            }
            yield return command.Trim();
        }
    }

    private static List<string> Words(string command) =>
        command.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).ToList();

    /// <summary>The longest run of leading words that is a command, and its --help.</summary>
    private static (List<string> Path, string? Help) Resolve(List<string> words)
    {
        var leading = words.TakeWhile(w => CommandWord().IsMatch(w)).Take(3).ToList();
        for (var n = leading.Count; n >= 1; n--)
        {
            var path = leading.Take(n).ToList();
            var help = HelpCache.GetOrAdd(string.Join(' ', path), _ =>
            {
                var run = Cli.Run([.. path, "--help"]);
                return run.ExitCode == 0 && run.Stdout.Contains($"fer {string.Join(' ', path)} ", StringComparison.Ordinal) ? run.Stdout : null;
            });
            if (help is not null) return (path, help);
        }
        return ([], null);
    }

    [GeneratedRegex(@"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")]
    private static partial Regex Link();

    [GeneratedRegex(@"--[a-z][a-z0-9-]*")]
    private static partial Regex OptionName();

    [GeneratedRegex(@"^[a-z][a-z-]*$")]
    private static partial Regex CommandWord();
}
