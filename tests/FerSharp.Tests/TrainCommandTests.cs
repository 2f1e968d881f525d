using System.Text.RegularExpressions;

using FerSharp.Data;

namespace FerSharp.Tests;

/// <summary>`fer train` as a user runs it: a fresh run, its continuation with --resume, and bad input.</summary>
[Collection("torch")]
public class TrainCommandTests
{
    private static string WriteData(TempDir dir)
    {
        var faces = Synthetic.Patterns(8, seed: 1).Concat(Synthetic.Patterns(2, seed: 2, split: DataSplit.PublicTest));
        var csv = dir.File("faces.csv");
        using var writer = new StreamWriter(csv);
        Fer2013CsvWriter.Write(writer, faces);
        return csv;
    }

    private static string Log(string runs) => File.ReadAllText(Path.Combine(runs, "t", "log.txt"));

    [Fact]
    public void Trains_says_how_long_is_left_and_resumes_where_it_stopped()
    {
        using var dir = new TempDir();
        var csv = WriteData(dir);
        var runs = dir.File("runs");
        string[] common = ["train", "--data", csv, "--arch", "seed-cnn", "--batch-size", "16", "--augment", "none", "--name", "t", "--runs-dir", runs];

        var first = Cli.Run([.. common, "--epochs", "2"]);
        Assert.True(first.ExitCode == 0, first.Stderr + first.Stdout);
        // Each epoch's line but the last says what remains at that pace.
        Assert.Matches(new Regex(@"epoch 1 .*\| 1 more epoch, ~\d+ (s|min)"), first.Stdout);
        Assert.DoesNotMatch(new Regex(@"epoch 2 .*more epoch"), first.Stdout);
        Assert.Contains("epoch 2/2:", Log(runs));
        Assert.True(File.Exists(Path.Combine(runs, "t", "model", "model.json")));

        // A second `--resume` while the run is still going (here: this test holds its lock) stops before loading data.
        using (Training.RunLock.Acquire(Path.Combine(runs, "t")))
        {
            var twice = Cli.Run([.. common, "--epochs", "4", "--resume"]);
            Assert.Equal(2, twice.ExitCode);
            Assert.Contains($"is being trained by another process (pid {Environment.ProcessId}", twice.Stderr);
            Assert.DoesNotContain("loading", twice.Stdout);
        }

        var resumed = Cli.Run([.. common, "--epochs", "4", "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Stderr + resumed.Stdout);
        Assert.DoesNotMatch(new Regex(@"^epoch [12] ", RegexOptions.Multiline), resumed.Stdout); // not trained again
        Assert.Matches(new Regex(@"epoch 3 .*\| 1 more epoch"), resumed.Stdout);
        Assert.Contains("resumed from", Log(runs));
        Assert.Contains("epoch 4/4:", Log(runs));
        Assert.DoesNotContain("epoch 1/4:", Log(runs));
    }

    [Fact]
    public void Continuing_a_package_with_its_own_seed_says_it_repeats_the_same_draws()
    {
        using var dir = new TempDir();
        var csv = WriteData(dir);
        var runs = dir.File("runs");
        string[] common = ["train", "--data", csv, "--arch", "seed-cnn", "--batch-size", "16", "--epochs", "1", "--runs-dir", runs];
        var first = Cli.Run([.. common, "--name", "first"]);
        Assert.True(first.ExitCode == 0, first.Stderr + first.Stdout);
        var package = Path.Combine(runs, "first", "model");

        var same = Cli.Run([.. common, "--name", "same", "--init-from", package]);
        Assert.True(same.ExitCode == 0, same.Stderr + same.Stdout);
        Assert.Contains("same --seed 42", same.Stdout);

        var fresh = Cli.Run([.. common, "--name", "fresh", "--init-from", package, "--seed", "43"]);
        Assert.True(fresh.ExitCode == 0, fresh.Stderr + fresh.Stdout);
        Assert.DoesNotContain("same --seed", fresh.Stdout);
    }

    [Fact]
    public void Trains_and_evaluates_on_FER_plus_vote_distributions_with_eight_classes()
    {
        using var dir = new TempDir();
        var csv = WriteData(dir);
        // Votes in the FER2013 file's row order: most for each face's own class (its FER+ column), the rest spread
        // over neutral and contempt, so the targets are distributions and contempt, which FER2013 lacks, appears.
        int[] ferPlusColumn = [4, 5, 6, 1, 3, 2, 0]; // angry, disgust, fear, happy, sad, surprise, neutral
        var faces = Fer2013Dataset.Load(csv);
        var ferplus = dir.File("fer2013new.csv");
        File.WriteAllLines(ferplus, new[] { "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF" }
            .Concat(Enumerable.Range(0, faces.Count).Select(i =>
            {
                var votes = new int[10];
                votes[ferPlusColumn[faces.Labels[i]]] += 6;
                votes[0] += 2;
                votes[7] += 2;
                return $"{faces.Splits[i]},fer{i:D7}.png,{string.Join(',', votes)}";
            })));
        var runs = dir.File("runs");
        var train = Cli.Run("train", "--data", csv, "--ferplus", ferplus, "--ferplus-mode", "Distribution", "--arch", "fast-cnn", "--batch-size", "16",
            "--augment", "none", "--epochs", "2", "--name", "t", "--runs-dir", runs);
        Assert.True(train.ExitCode == 0, train.Stderr + train.Stdout);
        var package = Path.Combine(runs, "t", "model");
        Assert.Equal(EmotionClasses.FerPlus, Models.EmotionModel.ReadMetadata(package).ClassNames);

        var evaluate = Cli.Run("evaluate", "--model", package, "--data", csv, "--ferplus", ferplus, "--split", "PublicTest", "--json", "-o", dir.File("report"));
        Assert.True(evaluate.ExitCode == 0, evaluate.Stderr + evaluate.Stdout);
        var metrics = System.Text.Json.JsonDocument.Parse(evaluate.Stdout).RootElement;
        Assert.InRange(metrics.GetProperty("accuracy").GetDouble(), 0, 1);
        Assert.Contains("contempt", metrics.GetRawText());
    }

    [Fact]
    public void Missing_data_unknown_architecture_and_bad_checkpoint_interval_are_clear_errors_that_leave_no_run()
    {
        using var dir = new TempDir();
        var runs = dir.File("runs");
        var missing = Cli.Run("train", "--data", dir.File("nope.csv"), "--epochs", "1", "--name", "t", "--runs-dir", runs);
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("nope.csv", missing.Stderr);

        var csv = WriteData(dir);
        var arch = Cli.Run("train", "--data", csv, "--arch", "no-such-net", "--epochs", "1", "--name", "t", "--runs-dir", runs);
        Assert.NotEqual(0, arch.ExitCode);
        Assert.Contains("no-such-net", arch.Stderr);
        Assert.False(Directory.Exists(Path.Combine(runs, "t", "model")), "a failed start must not leave a package behind");

        var interval = Cli.Run("train", "--data", csv, "--checkpoint-minutes", "-1", "--epochs", "1", "--name", "t", "--runs-dir", runs);
        Assert.Equal(2, interval.ExitCode);
        Assert.Contains("--checkpoint-minutes", interval.Stderr);
        Assert.False(Directory.Exists(Path.Combine(runs, "t")), "a refused start must not leave a run behind");
    }
}
