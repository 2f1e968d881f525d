// Benchmarks: training/inference throughput per architecture (with achieved GFLOP/s against the CPU's
// fp32 peak), per-face latency of shipped models, photo pipeline latency and video FPS.
// Every figure is the median of several timed runs after warm-up, with min and max.
// Usage: bench/run [--quick] [--only training,latency,photo,video]
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

using FerSharp.Bench;
using FerSharp.Data;
using FerSharp.Inference;
using FerSharp.Models;
using FerSharp.Training;

using OpenCvSharp;

using Spectre.Console;

using TorchSharp;

using static TorchSharp.torch;

var quick = args.Contains("--quick");
var onlyIndex = Array.IndexOf(args, "--only");
var only = onlyIndex >= 0 && onlyIndex + 1 < args.Length ? args[onlyIndex + 1].Split(',').ToHashSet() : null;
bool Wanted(string part) => only == null || only.Contains(part);
var outDir = Path.Combine(Repo.Root, "bench");
var machine = MachineInfo.Read();
set_num_threads(Environment.ProcessorCount);
AnsiConsole.MarkupLineInterpolated($"[bold]{machine.Cpu}[/], {machine.Cores} cores, {machine.GHz:F2} GHz, fp32 peak {machine.PeakGflops:F0} GFLOP/s; .NET {Environment.Version}, TorchSharp {machine.TorchSharp}");
var results = new Dictionary<string, object> { ["machine"] = machine, ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), ["quick"] = quick };
var runs = quick ? 3 : 5;

if (Wanted("training"))
{
    var rows = new List<object>();
    foreach (var arch in ModelRegistry.All)
    {
        using var model = arch.Create(7);
        var flops = ModelProfiler.Profile(model).Flops;
        foreach (var batch in new[] { 64, 128 })
        {
            var optimizer = optim.Adam(model.parameters(), 1e-3);
            model.train();
            using var x = rand(batch, 1, 48, 48);
            using var y = randint(0, 7, [batch]);
            var steps = quick ? 3 : 6;
            var times = Timing.Measure(runs, warmup: 1, () =>
            {
                for (var s = 0; s < steps; s++)
                {
                    using var scope = NewDisposeScope();
                    var loss = nn.functional.cross_entropy(model.forward(x), y);
                    optimizer.zero_grad();
                    loss.backward();
                    optimizer.step();
                }
            });
            var perImage = times.Select(t => t / (steps * batch)).ToArray();
            var stats = Stats.Of(perImage.Select(t => 1 / t));
            // forward + backward ≈ 3x the forward FLOPs
            var gflops = stats.Median * flops * 3 / 1e9;
            rows.Add(new { architecture = arch.Name, batch, images_per_second = stats, gflops = Math.Round(gflops, 1), peak_fraction = Math.Round(gflops / machine.PeakGflops, 3) });
            AnsiConsole.MarkupLineInterpolated($"train {arch.Name,-14} batch {batch,3}: {stats} img/s, {gflops:F1} GFLOP/s ({gflops / machine.PeakGflops:P0} of peak)");
        }
        model.eval();
        using (no_grad())
        {
            foreach (var batch in new[] { 1, 64, 256 })
            {
                using var x = rand(batch, 1, 48, 48);
                var reps = batch == 1 ? 50 : 2;
                var times = Timing.Measure(runs, warmup: 1, () =>
                {
                    for (var r = 0; r < reps; r++)
                    {
                        using var y = model.forward(x);
                    }
                });
                var stats = Stats.Of(times.Select(t => reps * batch / t));
                var gflops = stats.Median * flops / 1e9;
                rows.Add(new { architecture = arch.Name, batch, inference = true, images_per_second = stats, gflops = Math.Round(gflops, 1), peak_fraction = Math.Round(gflops / machine.PeakGflops, 3) });
                AnsiConsole.MarkupLineInterpolated($"infer {arch.Name,-14} batch {batch,3}: {stats} img/s, {gflops:F1} GFLOP/s");
            }
        }
    }
    results["throughput"] = rows;
}

var shipped = ModelCatalog.ModelsDirectory() is { } modelsDir
    ? Directory.GetDirectories(modelsDir).Where(d => File.Exists(Path.Combine(d, "model.json"))).Order().ToList()
    : [];

if (Wanted("latency"))
{
    var rows = new List<object>();
    foreach (var path in shipped)
    {
        using var model = EmotionModel.Load(path);
        var face = new byte[FaceDataset.PixelsPerImage];
        new Random(1).NextBytes(face);
        var samples = Timing.Measure(quick ? 200 : 1000, warmup: 20, () => model.PredictProbabilities([face]));
        var ms = samples.Select(t => t * 1000).Order().ToArray();
        var row = new { model = Path.GetFileName(path), median_ms = Math.Round(Stats.Percentile(ms, 50), 3), p99_ms = Math.Round(Stats.Percentile(ms, 99), 3), min_ms = Math.Round(ms[0], 3) };
        rows.Add(row);
        AnsiConsole.MarkupLineInterpolated($"latency {row.model}: median {row.median_ms} ms, p99 {row.p99_ms} ms per face (batch 1)");
    }
    results["latency"] = rows;
}

var facesPath = Fer2013Dataset.FindSharedData();
FaceDataset? faces = facesPath == null ? null : Fer2013Dataset.Load(facesPath, new DatasetLoadOptions { Splits = [DataSplit.PrivateTest] });
if ((Wanted("photo") || Wanted("video")) && (faces == null || shipped.Count == 0))
{
    AnsiConsole.MarkupLine("[yellow]photo/video benchmarks skipped: they need ../shared FER2013 faces and a shipped model[/]");
}
else
{
    using var recognizer = EmotionRecognizer.Load();
    if (Wanted("photo"))
    {
        var rows = new List<object>();
        foreach (var (w, h) in new[] { (640, 480), (1920, 1080) })
            foreach (var n in new[] { 1, 5 })
            {
                using var image = Scenes.Build(faces!, w, h, n);
                var found = recognizer.Recognize(image).Count;
                var samples = Timing.Measure(quick ? 10 : 30, warmup: 3, () => recognizer.Recognize(image));
                var ms = samples.Select(t => t * 1000).Order().ToArray();
                var row = new { size = $"{w}x{h}", faces = n, detected = found, median_ms = Math.Round(Stats.Percentile(ms, 50), 2), p99_ms = Math.Round(Stats.Percentile(ms, 99), 2), min_ms = Math.Round(ms[0], 2), max_ms = Math.Round(ms[^1], 2) };
                rows.Add(row);
                AnsiConsole.MarkupLineInterpolated($"photo {row.size} with {n} face(s) ({found} detected): median {row.median_ms} ms (min {row.min_ms}, max {row.max_ms})");
            }
        results["photo"] = rows;
    }
    if (Wanted("video"))
    {
        var rows = new List<object>();
        var dir = Directory.CreateTempSubdirectory("fersharp-bench");
        try
        {
            foreach (var (w, h, n) in new[] { (640, 480, 1), (1920, 1080, 5) })
            {
                var clip = Path.Combine(dir.FullName, $"clip-{w}x{h}.avi");
                var frames = quick ? 60 : 150;
                using (var writer = new VideoWriter(clip, FourCC.MJPG, 30, new OpenCvSharp.Size(w, h)))
                {
                    for (var f = 0; f < frames; f++)
                    {
                        using var frame = Scenes.Build(faces!, w, h, n, shift: f);
                        writer.Write(frame);
                    }
                }
                var fps = new List<double>();
                for (var r = 0; r < runs; r++)
                {
                    var summary = VideoRecognition.Process(recognizer, clip);
                    fps.Add(summary.FramesPerSecond);
                }
                var stats = Stats.Of(fps);
                rows.Add(new { size = $"{w}x{h}", faces = n, frames, fps = stats });
                AnsiConsole.MarkupLineInterpolated($"video {w}x{h} with {n} face(s): {stats} FPS end to end (decode + detect + classify + track)");
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
        results["video"] = rows;
    }
    if (Wanted("server"))
    {
        using var scene = Scenes.Build(faces!, 640, 480, 1);
        var jpeg = scene.ImEncode(".jpg");
        var load = ServerLoad.RunAsync(recognizer, jpeg, [1, 4, 16], TimeSpan.FromSeconds(quick ? 8 : 20), quick ? 400 : 2000).GetAwaiter().GetResult();
        foreach (var r in load)
        {
            AnsiConsole.MarkupLineInterpolated($"server {r.Clients,2} clients: {r.RequestsPerSecond} req/s, p50 {r.P50Ms} ms, p95 {r.P95Ms} ms, p99 {r.P99Ms} ms, {r.Errors} errors of {r.Requests}; working set {r.WorkingSetBeforeMb} -> {r.WorkingSetAfterMb} MB (peak {r.PeakWorkingSetMb})");
        }
        results["server"] = load;
    }
}

var json = JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true });
var resultsPath = Path.Combine(outDir, "results.json");
File.WriteAllText(resultsPath + ".tmp", json);
File.Move(resultsPath + ".tmp", resultsPath, overwrite: true);
AnsiConsole.MarkupLineInterpolated($"wrote {resultsPath}");
