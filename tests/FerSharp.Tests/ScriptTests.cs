using System.Diagnostics;
using System.Text.RegularExpressions;

namespace FerSharp.Tests;

/// <summary>The shell set-up that ./fer and ./test share (scripts/bootstrap.sh).</summary>
public sealed partial class ScriptTests
{
    /// <summary>
    /// Under <c>set -o pipefail</c>, <c>ldconfig -p | grep -q</c> failed about 1 run in 10: grep stops at the
    /// first match and ldconfig dies of SIGPIPE. ./test has installed the packages by the time this runs, so
    /// every one of many checks must find nothing missing.
    /// </summary>
    [Fact]
    public void Package_check_finds_installed_packages_every_time()
    {
        const string script = """
            set -euo pipefail
            source scripts/bootstrap.sh
            for i in $(seq 300); do
              missing="$(fersharp_missing_packages)"
              if [ -n "$missing" ]; then echo "run $i reported missing: $missing"; exit 1; fi
            done
            echo ok
            """;
        var (exit, output) = Bash(script);
        Assert.True(exit == 0 && output.Trim() == "ok", output);
    }

    /// <summary>A pipeline into a reader that stops early (grep -q, head) can fail under pipefail on a good run.</summary>
    [Fact]
    public void No_script_pipes_into_a_reader_that_stops_early()
    {
        var scripts = new[] { "fer", "test", ".ci/run" }
            .Concat(Directory.GetFiles(Repository.PathOf("scripts"), "*.sh").Select(f => Path.GetRelativePath(Repository.Root, f)))
            .Concat(File.Exists(Repository.PathOf("bench/run")) ? ["bench/run"] : []);
        var offending = new List<string>();
        foreach (var script in scripts)
        {
            var lines = File.ReadAllLines(Repository.PathOf(script));
            for (var i = 0; i < lines.Length; i++)
            {
                var code = lines[i].TrimStart();
                if (code.StartsWith('#')) continue;
                if (EarlyReader().IsMatch(code)) offending.Add($"{script}:{i + 1}: {code}");
            }
        }
        Assert.True(offending.Count == 0, string.Join('\n', offending));
    }

    [GeneratedRegex(@"\|\s*(grep\s+(-[a-zA-Z]*q|--quiet)|head\b)")]
    private static partial Regex EarlyReader();

    private static (int Exit, string Output) Bash(string script)
    {
        var info = new ProcessStartInfo("bash", ["-c", script])
        {
            WorkingDirectory = Repository.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("bash did not finish in 3 minutes");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
