using System.Diagnostics;
using System.Text.Json;

using OpenCvSharp;

namespace FerSharp.Tests;

/// <summary><c>fer predict</c> as a batch worker: shards, streaming output, resume after a kill, Ctrl+C.</summary>
public sealed class BatchPredictTests
{
    /// <summary>Photos without faces: every one still gets a row, after the detector's full looks (a few ms each).</summary>
    private static List<string> Photos(TempDir dir, int count)
    {
        Directory.CreateDirectory(dir.File("photos/sub"));
        var paths = new List<string>();
        for (var i = 0; i < count; i++)
        {
            using var image = new Mat(480, 640, MatType.CV_8UC3, new Scalar(20 + i * 7 % 200, 90, 160));
            var path = dir.File(i % 3 == 0 ? $"photos/sub/p{i:D3}.png" : $"photos/p{i:D3}.png");
            Cv2.ImWrite(path, image);
            paths.Add(path);
        }
        return paths;
    }

    private static HashSet<string> FilesIn(string jsonl) => File.ReadAllLines(jsonl).Where(l => l.Length > 0)
        .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("file").GetString()!).ToHashSet();

    [Fact]
    public void Shards_are_disjoint_and_together_cover_every_file()
    {
        using var dir = new TempDir();
        var photos = Photos(dir, 24);
        var seen = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var run = Cli.Run("predict", dir.File("photos"), "--format", "jsonl", "--shard", $"{i}/3", "-m", "fer2013-realtime");
            Assert.True(run.ExitCode == 0, run.Stderr);
            var files = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("file").GetString()!).ToList();
            Assert.NotEmpty(files); // 24 files in 3 shards: each gets some
            seen.AddRange(files);
        }
        Assert.Equal(photos.Order(), seen.Order());
        var bad = Cli.Run("predict", dir.File("photos"), "--shard", "3/3");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--shard", bad.Stderr);
    }

    [Fact]
    public void Resume_after_a_kill_gives_the_rows_of_an_uninterrupted_run()
    {
        using var dir = new TempDir();
        var photos = Photos(dir, 150);
        var whole = Cli.Run("predict", dir.File("photos"), "--format", "jsonl", "-o", dir.File("whole.jsonl"), "-m", "fer2013-realtime");
        Assert.True(whole.ExitCode == 0, whole.Stderr);

        var target = dir.File("killed.jsonl");
        using (var worker = Cli.Start("predict", dir.File("photos"), "--format", "jsonl", "-o", target, "-m", "fer2013-realtime"))
        {
            var watch = Stopwatch.StartNew();
            while ((!File.Exists(target) || File.ReadAllLines(target).Length < 5) && !worker.HasExited && watch.Elapsed < TimeSpan.FromMinutes(2))
            {
                Thread.Sleep(5);
            }
            if (!worker.HasExited) worker.Kill(entireProcessTree: true);
            worker.WaitForExit();
        }
        var before = FilesIn(target).Count;
        Assert.True(before < photos.Count, "the worker finished before it could be killed; nothing to resume");
        // A worker killed mid-line leaves half a row: resume must drop it, not choke on it.
        File.AppendAllText(target, "{\"file\":\"half a ro");
        var refused = Cli.Run("predict", dir.File("photos"), "--format", "jsonl", "-o", target, "-m", "fer2013-realtime");
        Assert.Equal(2, refused.ExitCode); // an existing --out file is never overwritten without --resume
        var resumed = Cli.Run("predict", dir.File("photos"), "--format", "jsonl", "-o", target, "--resume", "-m", "fer2013-realtime");
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        var lines = File.ReadAllLines(target).Where(l => l.Length > 0).ToList();
        Assert.Equal(photos.Count, lines.Count); // every file once: none twice, none lost
        Assert.Equal(FilesIn(dir.File("whole.jsonl")), FilesIn(target));
    }

    [Fact]
    public void Csv_gives_every_input_a_row_and_json_names_model_and_engine()
    {
        using var dir = new TempDir();
        var photos = Photos(dir, 3);
        var missing = dir.File("missing.png");
        var csv = Cli.Run("predict", photos[0], missing, "--format", "csv", "-m", "fer2013-realtime");
        Assert.Equal(1, csv.ExitCode); // a failed file fails the run, after the others
        var rows = csv.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.EndsWith(",detector_score,found,error", rows[0]);
        Assert.All(rows, r => Assert.Equal(rows[0].Split(',').Length, r.Split(',').Length)); // a row without a face keeps every column
        Assert.Contains(rows, r => r.StartsWith(photos[0] + ",0,", StringComparison.Ordinal)); // no face: face 0
        Assert.Contains(rows, r => r.StartsWith(missing + ",0,", StringComparison.Ordinal) && r.EndsWith(",no such file", StringComparison.Ordinal));

        var json = Cli.Run("predict", photos[1], "--format", "json", "-m", "fer2013-realtime");
        var entry = JsonDocument.Parse(json.Stdout).RootElement[0];
        Assert.Equal("fer2013-realtime", entry.GetProperty("model").GetString());
        Assert.False(string.IsNullOrEmpty(entry.GetProperty("engine").GetString()));
    }

    [Fact]
    public void The_pixel_limit_is_an_option_and_refuses_larger_images_before_decoding()
    {
        using var dir = new TempDir();
        var photo = Photos(dir, 1)[0]; // 640x480: 0.31 megapixels
        var refused = Cli.Run("predict", photo, "--format", "json", "--max-megapixels", "0.3", "-m", "fer2013-realtime");
        Assert.Equal(1, refused.ExitCode); // the file failed, with its reason in its row
        Assert.Contains("pixels", JsonDocument.Parse(refused.Stdout).RootElement[0].GetProperty("error").GetString());
        var allowed = Cli.Run("predict", photo, "--format", "json", "--max-megapixels", "0.31", "-m", "fer2013-realtime");
        Assert.True(allowed.ExitCode == 0, allowed.Stderr);
        Assert.Equal(2, Cli.Run("predict", photo, "--max-megapixels", "1000").ExitCode);
        Assert.Contains("--max-megapixels", Cli.Run("serve", "--help").Stdout);
    }

    [Fact]
    public void Threads_per_photo_change_the_time_not_the_answer_and_a_bad_count_names_the_option()
    {
        using var dir = new TempDir();
        var photo = Photos(dir, 1)[0];
        var probabilities = new[] { "1", "2" }.Select(threads =>
        {
            // Plain colour, no face: classified whole, which is what the threads change.
            var run = Cli.Run("predict", photo, "--no-detect", "--format", "json", "--threads", threads, "-m", "fer2013-realtime");
            Assert.True(run.ExitCode == 0, run.Stderr);
            return JsonDocument.Parse(run.Stdout).RootElement[0].GetProperty("faces")[0].GetProperty("probabilities").EnumerateObject().Select(p => p.Value.GetDouble()).ToList();
        }).ToList();
        Assert.Equal(probabilities[0].Count, probabilities[1].Count);
        Assert.All(probabilities[0].Zip(probabilities[1]), p => Assert.Equal(p.First, p.Second, 4));
        var refused = Cli.Run("predict", photo, "--threads", "0");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--threads", refused.Stderr);
        Assert.Contains("--threads", Cli.Run("video", "--help").Stdout);
    }

    [Fact]
    public void Ctrl_C_leaves_a_complete_json_array_of_the_finished_files_and_exits_130()
    {
        using var dir = new TempDir();
        Photos(dir, 300);
        var target = dir.File("out.json");
        // Through env --default-signal: a test run started in the background (nohup, &) ignores SIGINT, and a child
        // inherits that, so the worker would finish every file; a terminal's Ctrl+C reaches a default handler.
        var start = Dotnet.StartInfo(AppContext.BaseDirectory, ["predict", dir.File("photos"), "--format", "json", "-o", target, "-m", "fer2013-realtime"],
            new Dictionary<string, string?> { ["NO_COLOR"] = "1" });
        start.ArgumentList.Insert(0, Path.Combine(AppContext.BaseDirectory, "fer.dll"));
        start.ArgumentList.Insert(0, "dotnet");
        start.ArgumentList.Insert(0, "--default-signal=INT");
        start.FileName = "env";
        using var worker = Process.Start(start)!;
        var watch = Stopwatch.StartNew();
        while ((!File.Exists(target) || File.ReadAllText(target).Split("\"file\"").Length < 4) && !worker.HasExited && watch.Elapsed < TimeSpan.FromMinutes(2))
        {
            Thread.Sleep(5);
        }
        Assert.False(worker.HasExited, "the run finished before it could be interrupted");
        Assert.Equal(0, Processes.Signal(worker.Id, 2)); // SIGINT, as Ctrl+C sends
        if (!worker.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            var alive = Directory.Exists($"/proc/{worker.Id}");
            var state = alive ? File.ReadAllText($"/proc/{worker.Id}/status").Split('\n').FirstOrDefault(l => l.StartsWith("State", StringComparison.Ordinal)) : "gone";
            worker.Kill(entireProcessTree: true);
            Assert.Fail($"no exit 60 s after SIGINT; /proc says {state}");
        }
        Assert.Equal(130, worker.ExitCode);
        var finished = JsonDocument.Parse(File.ReadAllText(target)).RootElement.GetArrayLength();
        Assert.InRange(finished, 3, 299);
    }
}
