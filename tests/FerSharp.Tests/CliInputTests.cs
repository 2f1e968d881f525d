using FerSharp.Data;

namespace FerSharp.Tests;

/// <summary>
/// Numbers and names the option types accept but the commands cannot use: each is refused by its option's name,
/// with exit code 2 and no stack trace, before any slow work (data, a model) and without leaving anything behind.
/// </summary>
public class CliInputTests
{
    [Theory]
    [InlineData("--lr", "NaN")]
    [InlineData("--lr", "Infinity")]
    [InlineData("--momentum", "2")]
    [InlineData("--warmup", "-1")]
    [InlineData("--patience", "-1")]
    [InlineData("--plateau-patience", "0")]
    [InlineData("--weight-decay", "-1")]
    [InlineData("--label-smoothing", "NaN")]
    [InlineData("--logit-adjust", "3")]
    [InlineData("--logit-adjust", "NaN")]
    [InlineData("--ema", "NaN")]
    [InlineData("--threads", "0")]
    [InlineData("--limit", "-5")]
    [InlineData("--checkpoint-minutes", "NaN")]
    [InlineData("--name", "../escaped")]
    [InlineData("--name", "..")]
    [InlineData("--name", "runs/inner")]
    public void Train_refuses_out_of_range_options_by_name_before_loading_data(string option, string value)
    {
        using var dir = new TempDir();
        var runs = dir.File("runs");
        // Missing data: an option that slipped through would fail on it instead, naming the file.
        var args = new List<string> { "train", "--data", dir.File("nope.csv"), "--epochs", "1", "--runs-dir", runs, option, value };
        if (option != "--name") args.AddRange(["--name", "t"]);
        var result = Cli.Run([.. args]);
        AssertRefused(result, option);
        Assert.False(Directory.Exists(runs), "a refused start must not leave a run behind");
        Assert.False(Directory.Exists(dir.File("escaped")), "a run name must not reach outside --runs-dir");
    }

    [Theory]
    [InlineData("--urls", "foo")]
    [InlineData("--urls", ";")]
    [InlineData("--max-concurrency", "0")]
    [InlineData("--max-queue", "-1")]
    [InlineData("--timeout", "0")]
    [InlineData("--max-body-mb", "0")]
    [InlineData("--margin", "1.5")]
    public void Serve_refuses_out_of_range_options_by_name_before_loading_the_model(string option, string value)
    {
        // A missing model: the refusal must come first, and before anything listens.
        var result = Cli.Run("serve", "--model", "/nonexistent-fersharp-model", option, value);
        AssertRefused(result, option);
    }

    [Fact]
    public void Predict_models_and_the_augmentation_preview_refuse_numbers_they_cannot_use()
    {
        using var dir = new TempDir();
        var png = dir.File("face.png");
        File.WriteAllBytes(png, FaceImages.EncodePng(Synthetic.Patterns(1, seed: 3).Face(0)));
        foreach (var margin in new[] { "-0.1", "NaN", "2" })
        {
            AssertRefused(Cli.Run("predict", png, "--model", "/nonexistent-fersharp-model", "--margin", margin), "--margin");
        }
        AssertRefused(Cli.Run("models", "--classes", "1"), "--classes");
        var preview = dir.File("preview.png");
        AssertRefused(Cli.Run("data", "preview-augment", dir.File("nope.csv"), "--rows", "0", "-o", preview), "--rows");
        Assert.False(File.Exists(preview));
    }

    [Fact]
    public void A_file_where_a_folder_is_written_is_refused_and_left_as_it_was()
    {
        using var dir = new TempDir();
        var png = dir.File("face.png");
        File.WriteAllBytes(png, FaceImages.EncodePng(Synthetic.Patterns(1, seed: 3).Face(0)));
        var file = dir.File("notes.txt");
        File.WriteAllText(file, "keep me");

        // Each names a missing model or data file too: the refusal must come before the slow work that reads it.
        var missingModel = "/nonexistent-fersharp-model";
        var missingData = dir.File("nope.csv");
        foreach (var (named, args) in new (string, string[])[]
        {
            ("--annotate", ["predict", png, "--model", missingModel, "--annotate", file]),
            ("--out", ["evaluate", "--model", missingModel, "--data", missingData, "--out", file]),
            ("outdir", ["data", "export-images", missingData, file]),
            ("destination", ["models", "ship", missingModel, file, "--no-test"]),
            ("--out", ["models", "average", missingModel, missingModel, "--out", file]),
            ("--runs-dir", ["train", "--data", missingData, "--epochs", "1", "--runs-dir", file]),
        })
        {
            var result = Cli.Run(args);
            AssertRefused(result, named);
            Assert.Contains("is a file", result.Stderr);
            Assert.Equal("keep me", File.ReadAllText(file));
        }
    }

    private static void AssertRefused(Dotnet.Result result, string option)
    {
        Assert.True(result.ExitCode == 2, $"exit code {result.ExitCode}\n{result.Stdout}\n{result.Stderr}");
        Assert.StartsWith("fer: error: ", result.Stderr.TrimStart());
        Assert.Contains(option, result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }
}

/// <summary>A command line that does not parse: one line naming the option and its valid values, exit code 2, no help dump.</summary>
public sealed class CliParseErrorTests
{
    [Theory]
    [InlineData("predict|a.png|--format|xml", "--format: 'xml' is not one of table, json, jsonl, csv")]
    [InlineData("evaluate|--tta|crop", "--tta: 'crop' is not one of None, Flip, Crops")]
    [InlineData("bogus", "unknown command, option or argument 'bogus'")]
    [InlineData("predict", "missing <files>")]
    [InlineData("predict|a.png|--bogus", "unknown option '--bogus'")]
    [InlineData("train|--lr|abc", "--lr: 'abc' is not a number")]
    public void A_parse_error_is_one_line_naming_the_option_with_exit_code_2(string args, string expected)
    {
        var run = Cli.Run(args.Split('|'));
        Assert.Equal(2, run.ExitCode);
        var lines = run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, run.Stderr);
        Assert.StartsWith($"fer: error: {expected}", lines[0]);
        Assert.Contains("--help", lines[0]);
        Assert.DoesNotContain("FerSharp.", run.Stderr); // no .NET type names
        Assert.Equal("", run.Stdout.Trim()); // no help dump
    }
}

/// <summary>Small defects a new user met on a fresh clone (issue 62, 10-12).</summary>
public sealed class FreshCloneCliTests
{
    [Fact]
    public void Runs_without_a_runs_folder_says_there_are_none_and_succeeds()
    {
        using var dir = new TempDir();
        var run = Cli.Run("runs", "--runs-dir", dir.File("runs"));
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("no runs", run.Stdout);
    }

    [Fact]
    public void An_unknown_split_lists_all_among_the_choices_before_loading_anything()
    {
        var run = Cli.Run("evaluate", "--split", "Foo");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("'Foo' is not one of PrivateTest, PublicTest, Training, all", run.Stderr);
    }

    [Fact]
    public void An_onnx_engine_for_face_crops_is_refused_with_where_it_does_apply()
    {
        var run = Cli.Run("evaluate", "--engine", "OnnxRuntime");
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("--engine: OnnxRuntime scores photos with --detect only", run.Stderr);
    }

    [Fact]
    public void No_command_lists_an_option_twice()
    {
        // Each command's --help, down the tree: an option added twice (a command's own and a shared set's) would
        // leave one of them unreachable.
        var pending = new Queue<string[]>([[]]);
        var checkedCommands = 0;
        while (pending.TryDequeue(out var path))
        {
            var help = Cli.Run([.. path, "--help"]);
            Assert.True(help.ExitCode == 0, $"fer {string.Join(' ', path)} --help: {help.Stderr}");
            var lines = help.Stdout.Split('\n');
            var options = Section(lines, "Options:").SelectMany(l => l.Trim().Split(' ')[0].Split(',', StringSplitOptions.TrimEntries)).Where(o => o.StartsWith('-')).ToList();
            var twice = options.GroupBy(o => o).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
            Assert.True(twice.Count == 0, $"fer {string.Join(' ', path)} lists {string.Join(", ", twice)} twice");
            foreach (var line in Section(lines, "Commands:")) pending.Enqueue([.. path, line.Trim().Split(' ')[0]]);
            checkedCommands++;
        }
        Assert.True(checkedCommands >= 15, $"{checkedCommands} commands checked");

        // The lines of a help section that start an entry (two spaces, then the name), up to the next section.
        static IEnumerable<string> Section(string[] lines, string title) => lines
            .SkipWhile(l => l.TrimEnd() != title).Skip(1)
            .TakeWhile(l => l.Length == 0 || l.StartsWith(' '))
            .Where(l => l.Length > 2 && l[2] != ' ' && l.StartsWith("  ", StringComparison.Ordinal));
    }

    [Fact]
    public void A_FERSHARP_DATA_without_the_data_is_named_in_the_error()
    {
        var run = Dotnet.Run(AppContext.BaseDirectory, [Path.Combine(AppContext.BaseDirectory, "fer.dll"), "evaluate"],
            new Dictionary<string, string?> { ["FERSHARP_DATA"] = "/nonexistent", ["NO_COLOR"] = "1" });
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("FERSHARP_DATA=/nonexistent", run.Stderr);
    }
}
