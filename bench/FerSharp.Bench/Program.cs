// Benchmarks: training/inference throughput per architecture (with achieved GFLOP/s against the CPU's
// fp32 peak), per-face latency of shipped models, photo pipeline latency and video FPS.
// Every figure is the median of several timed runs after warm-up, with min and max.
// Usage: bench/run [--quick] [--threads N] [--only training,precision,memory-format,memory,latency,accuracy,detector,photo,video,server,soak,peers,scalar-race]
// A full run (no --only) also rewrites the generated section of docs/BENCHMARKS.md.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

using FerSharp.Bench;
using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Inference;
using FerSharp.Models;
using FerSharp.Training;

using OpenCvSharp;

using Spectre.Console;

using TorchSharp;

using static TorchSharp.torch;

const string Usage = "usage: bench/run [--quick] [--threads N] [--model DIR] [--only training,precision,memory-format,memory,latency,accuracy,detector,photo,video,server,soak,peers,scalar-race]";
string[] sections = ["training", "precision", "memory-format", "memory", "latency", "accuracy", "detector", "photo", "video", "server", "soak", "peers", "scalar-race"];
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(Usage);
    Console.WriteLine("--model DIR: the photo and video pipelines with this model package instead of the default (e.g. models/fer2013-realtime).");
    Console.WriteLine("A full run (no --only, --threads or --model) rewrites bench/results.json and the generated section of docs/BENCHMARKS.md.");
    return 0;
}
// One pass reads and checks the options: a mistyped one must not start a half-hour run that then
// rewrites the published results.
var quick = false;
HashSet<string>? only = null;
int? threadOption = null;
string? modelOption = null;
for (var i = 0; i < args.Length; i++)
{
    string? bad = null;
    switch (args[i])
    {
        case "--quick":
            quick = true;
            break;
        case "--threads" when i + 1 < args.Length && int.TryParse(args[i + 1], CultureInfo.InvariantCulture, out var n) && n > 0:
            threadOption = n;
            i++;
            break;
        case "--threads":
            bad = "--threads needs a positive number";
            break;
        case "--model" when i + 1 < args.Length && File.Exists(Path.Combine(args[i + 1], "model.json")):
            modelOption = args[++i];
            break;
        case "--model":
            bad = i + 1 < args.Length ? $"--model {args[i + 1]}: no model.json in that folder" : "--model needs a model package folder";
            break;
        case "--only" when i + 1 < args.Length && args[i + 1].Split(',').All(sections.Contains):
            only = args[++i].Split(',').ToHashSet();
            break;
        case "--only":
            bad = $"--only takes a comma-separated list of: {string.Join(", ", sections)}";
            break;
        default:
            bad = $"unknown argument '{args[i]}'";
            break;
    }
    if (bad != null)
    {
        Console.Error.WriteLine($"bench: {bad}");
        Console.Error.WriteLine(Usage);
        return 2;
    }
}
bool Wanted(string part) => only == null || only.Contains(part);
var outDir = Path.Combine(Repo.Root, "bench");
var machine = MachineInfo.Read();
var threads = threadOption ?? Environment.ProcessorCount;
set_num_threads(threads);
AnsiConsole.MarkupLineInterpolated($"[bold]{machine.Cpu}[/], {threads} libtorch threads on {machine.Cores} cores, {machine.GHz:F2} GHz, fp32 peak {machine.PeakGflops:F0} GFLOP/s; .NET {Environment.Version}, TorchSharp {machine.TorchSharp}");
var results = new Dictionary<string, object> { ["machine"] = machine, ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), ["quick"] = quick, ["threads"] = threads };
var runs = quick ? 3 : 5;
var report = new Report();
string F(double value, string format = "F1") => value.ToString(format, CultureInfo.InvariantCulture);
string S(Stats stats) => $"{F(stats.Median)} ({F(stats.Min)}–{F(stats.Max)})";

if (Wanted("training"))
{
    var trainTable = report.Section("Training throughput (synthetic batches, forward + backward + Adam step)", "architecture", "batch", "img/s", "GFLOP/s", "of fp32 peak");
    var inferTable = report.Section("Inference throughput (no_grad, eval mode)", "architecture", "batch", "img/s", "GFLOP/s", "of fp32 peak");
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
            trainTable.Add([arch.Name, $"{batch}", S(stats), F(gflops), F(gflops / machine.PeakGflops, "P0")]);
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
                inferTable.Add([arch.Name, $"{batch}", S(stats), F(gflops), F(gflops / machine.PeakGflops, "P0")]);
                AnsiConsole.MarkupLineInterpolated($"infer {arch.Name,-14} batch {batch,3}: {stats} img/s, {gflops:F1} GFLOP/s");
            }
        }
    }
    results["throughput"] = rows;
}

// Training throughput as `fer train` runs a batch: forward + backward + SGD step at batch 64, in float32 NCHW on
// the network itself or through the trainer's PassCopy (bfloat16 and/or channels-last passes; the float32
// network takes the gradients and the step, so the copying is timed too).
Stats TrainingRate(Architecture arch, bool bfloat16, bool channelsLast)
{
    var passes = new TrainOptions
    {
        Precision = bfloat16 ? TrainingPrecision.BFloat16 : TrainingPrecision.Float32,
        MemoryFormat = channelsLast ? TrainingMemoryFormat.ChannelsLast : TrainingMemoryFormat.Contiguous,
    };
    using var model = arch.Create(7);
    using var copy = PassCopy.IsNeeded(passes) ? new PassCopy(model, arch.Create(7), passes.Precision, passes.MemoryFormat) : null;
    var optimizer = optim.SGD(model.parameters(), 0.01, momentum: 0.9, nesterov: true);
    model.train();
    using var input = rand(64, 1, 48, 48);
    using var y = randint(0, 7, [64]);
    var steps = quick ? 3 : 6;
    var times = Timing.Measure(runs, warmup: 1, () =>
    {
        for (var s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            copy?.Pull();
            var loss = nn.functional.cross_entropy(copy?.Forward(input) ?? model.forward(input), y);
            optimizer.zero_grad();
            loss.backward();
            copy?.Push();
            optimizer.step();
        }
    });
    return Stats.Of(times.Select(t => steps * 64 / t));
}

if (Wanted("precision"))
{
    var native = PassCopy.CpuHasNativeBFloat16();
    var table = report.Section($"Training throughput by precision (batch 64, forward + backward + SGD step as `fer train --precision` runs them; native bfloat16 arithmetic: {native?.ToString() ?? "unknown"})",
        "architecture", "Float32 img/s", "BFloat16 img/s", "BFloat16 / Float32");
    var rows = new List<object>();
    foreach (var arch in ModelRegistry.All)
    {
        var float32 = TrainingRate(arch, bfloat16: false, channelsLast: false);
        var bfloat16 = TrainingRate(arch, bfloat16: true, channelsLast: false);
        var ratio = bfloat16.Median / float32.Median;
        rows.Add(new { architecture = arch.Name, float32_images_per_second = float32, bfloat16_images_per_second = bfloat16, ratio = Math.Round(ratio, 2), native_bfloat16 = native });
        table.Add([arch.Name, S(float32), S(bfloat16), F(ratio, "F2") + "x"]);
        AnsiConsole.MarkupLineInterpolated($"precision {arch.Name,-14}: Float32 {float32} img/s, BFloat16 {bfloat16} img/s ({ratio:F2}x)");
    }
    results["precision"] = rows;
}

if (Wanted("memory-format"))
{
    // `fer train --memory-format ChannelsLast` against the default NCHW, in alternating rounds (the host drifts).
    var table = report.Section("Training throughput by memory layout (batch 64, `fer train --memory-format Contiguous` (NCHW) vs `ChannelsLast` (NHWC), two alternating rounds)",
        "architecture", "precision", "NCHW img/s", "channels-last img/s", "channels-last / NCHW");
    var rows = new List<object>();
    foreach (var arch in ModelRegistry.All)
    {
        foreach (var bfloat16 in new[] { false, true })
        {
            var nchw = new List<double>();
            var nhwc = new List<double>();
            for (var round = 0; round < 2; round++)
            {
                nchw.Add(TrainingRate(arch, bfloat16, channelsLast: false).Median);
                nhwc.Add(TrainingRate(arch, bfloat16, channelsLast: true).Median);
            }
            var (first, second) = (Stats.Of(nchw), Stats.Of(nhwc));
            var ratio = second.Median / first.Median;
            var precision = bfloat16 ? "BFloat16" : "Float32";
            rows.Add(new { architecture = arch.Name, precision, nchw_images_per_second = first, channels_last_images_per_second = second, ratio = Math.Round(ratio, 2) });
            table.Add([arch.Name, precision, S(first), S(second), F(ratio, "F2") + "x"]);
            AnsiConsole.MarkupLineInterpolated($"memory format {arch.Name,-14} {precision,-8}: NCHW {first} img/s, channels-last {second} img/s ({ratio:F2}x)");
        }
    }
    results["memory_format"] = rows;
}

var shipped = ModelCatalog.ModelsDirectory() is { } modelsDir
    ? Directory.GetDirectories(modelsDir).Where(d => File.Exists(Path.Combine(d, "model.json"))).Order().ToList()
    : [];

if (Wanted("latency"))
{
    var table = report.Section("Per-face classification latency (batch 1, one 48x48 face, full call: views, network, softmax)", "model", "architecture", "flip averaging", "ONNX Runtime median ms", "ONNX Runtime p99 ms", "ONNX Runtime 2 threads median ms", "OpenCV DNN median ms", "TorchSharp median ms", "TorchSharpBFloat16 median ms", "ONNX Runtime flip TTA median ms", "ONNX Runtime 10-crop TTA median ms");
    // Milliseconds per call: median, p99, min, rounded as reported.
    (double Median, double P99, double Min) Latency(Action call)
    {
        var ms = Timing.Measure(quick ? 200 : 1000, warmup: 20, call).Select(t => t * 1000).Order().ToArray();
        return (Math.Round(Stats.Percentile(ms, 50), 3), Math.Round(Stats.Percentile(ms, 99), 3), Math.Round(ms[0], 3));
    }
    var rows = new List<object>();
    foreach (var path in shipped)
    {
        var face = new byte[FaceDataset.PixelsPerImage];
        new Random(1).NextBytes(face);
        IReadOnlyList<byte[]> one = [face];
        (double Median, double P99, double Min) On(InferenceEngine engine, TtaMode tta = TtaMode.None, int threads = 1)
        {
            using IFaceClassifier classifier = engine is InferenceEngine.OnnxRuntime or InferenceEngine.OpenCv
                ? OnnxFaceClassifier.Load(path, new ClassifierOptions { Engine = engine, Threads = threads })
                : TorchFaceClassifier.Load(path, engine);
            return Latency(() => classifier.PredictProbabilities(one, tta));
        }
        var metadata = ModelPackage.ReadMetadata(path);
        var ort = On(InferenceEngine.OnnxRuntime);
        // OpenCV's DNN module runs on every core; ONNX Runtime on 2 threads is the like-for-like comparison.
        var ort2 = On(InferenceEngine.OnnxRuntime, threads: 2);
        var openCv = On(InferenceEngine.OpenCv);
        var torchSharp = On(InferenceEngine.TorchSharp);
        var bfloat16 = On(InferenceEngine.TorchSharpBFloat16);
        var flip = On(InferenceEngine.OnnxRuntime, TtaMode.Flip);
        var crops = On(InferenceEngine.OnnxRuntime, TtaMode.Crops);
        var row = new { model = Path.GetFileName(path), flip_averaging = metadata.FlipAveraging, onnxruntime_median_ms = ort.Median, onnxruntime_p99_ms = ort.P99, onnxruntime_2_threads_median_ms = ort2.Median, opencv_median_ms = openCv.Median, torchsharp_median_ms = torchSharp.Median, torchsharp_bfloat16_median_ms = bfloat16.Median, flip_tta_median_ms = flip.Median, crops_tta_median_ms = crops.Median };
        rows.Add(row);
        table.Add([row.model, metadata.Architecture, row.flip_averaging ? "yes" : "no", F(ort.Median, "F3"), F(ort.P99, "F3"), F(ort2.Median, "F3"), F(openCv.Median, "F3"), F(torchSharp.Median, "F3"), F(bfloat16.Median, "F3"), F(flip.Median, "F3"), F(crops.Median, "F3")]);
        AnsiConsole.MarkupLineInterpolated($"latency {row.model}: ONNX Runtime {ort.Median} ms (p99 {ort.P99}; 2 threads {ort2.Median}), OpenCV {openCv.Median} ms, TorchSharp {torchSharp.Median} ms, TorchSharpBFloat16 {bfloat16.Median} ms per face");
    }
    results["latency"] = rows;

    // The same for every registered architecture with fresh weights (cost depends only on the shape), so
    // a real-time design can be judged before it is trained; network forward only, no pre/post-processing.
    var archTable = report.Section("Architecture latency (batch 1, untrained weights, network forward only)", "architecture", "MFLOPs", "median ms", "p99 ms", "BN folded median ms", "ONNX Runtime median ms");
    var archRows = new List<object>();
    foreach (var architecture in ModelRegistry.All)
    {
        using var untrained = new EmotionModel(new ModelMetadata { Name = architecture.Name, Architecture = architecture.Name, ClassNames = EmotionClasses.Fer2013 }, architecture.Create(EmotionClasses.Fer2013.Count));
        var network = untrained.Network;
        var flops = ModelProfiler.Profile(network).Flops;
        using var input = rand(1, 1, 48, 48);
        var (median, p99, _) = Latency(() =>
        {
            using var noGrad = no_grad();
            using var output = network.call(input);
        });
        // What predictions ran before the OpenCV engine: batch norms folded into the layers before them.
        untrained.Engine = InferenceEngine.TorchSharp;
        var foldedMedian = Latency(() =>
        {
            using var output = untrained.Forward(input);
        }).Median;
        // The same network on ONNX Runtime, from its export.
        double? openCvMedian = null;
        if (OnnxExport.FindUnsupportedLayer(network) is null)
        {
            using var onnx = OnnxFaceClassifier.FromGraph(untrained.Metadata, OnnxExport.Export(untrained));
            var pixels = new float[FaceDataset.PixelsPerImage];
            openCvMedian = Latency(() => onnx.Forward(pixels, 1, out _)).Median;
        }
        var row = new { architecture = architecture.Name, mflops = Math.Round(flops / 1e6, 1), median_ms = median, p99_ms = p99, folded_median_ms = foldedMedian, opencv_median_ms = openCvMedian };
        archRows.Add(row);
        archTable.Add([row.architecture, F(row.mflops, "F1"), F(row.median_ms, "F3"), F(row.p99_ms, "F3"), F(foldedMedian, "F3"), openCvMedian is { } cv ? F(cv, "F3") : "n/a"]);
        AnsiConsole.MarkupLineInterpolated($"latency {row.architecture} (untrained): median {row.median_ms} ms, p99 {row.p99_ms} ms; batch norm folded {foldedMedian} ms; ONNX Runtime {openCvMedian?.ToString() ?? "n/a"} ms");
    }
    results["architecture_latency"] = archRows;
}


if (Wanted("memory"))
{
    // A real `fer train` process: the dataset in memory, augmentation, the model, the optimizer.
    var cli = Path.Combine(Repo.Root, "src", "FerSharp.Cli", "bin", "Release", "net10.0", "fer.dll");
    var data = Fer2013Dataset.FindSharedData();
    if (!File.Exists(cli) || data == null)
    {
        AnsiConsole.MarkupLine("[yellow]memory benchmark skipped: it needs the built CLI and ../shared FER2013 data[/]");
    }
    else
    {
        var table = report.Section("Peak memory of training (`fer train`, real FER2013 in memory, 1 epoch on the first 2,048 faces)", "architecture", "batch", "peak resident MB (VmHWM)");
        var rows = new List<object>();
        var runDir = Directory.CreateTempSubdirectory("fersharp-bench-train");
        try
        {
            foreach (var arch in ModelRegistry.All.Select(a => a.Name))
            {
                var (exit, peakMb, output) = ChildMemory.Run("dotnet", [cli, "train", "--arch", arch, "--epochs", "1", "--limit", "2048", "--batch-size", "64",
                    "--data", data, "--runs-dir", runDir.FullName, "--name", arch], TimeSpan.FromMinutes(5));
                if (exit != 0)
                {
                    AnsiConsole.MarkupLineInterpolated($"[red]fer train --arch {arch} failed ({exit}):[/] {output}");
                    continue;
                }
                rows.Add(new { architecture = arch, batch = 64, peak_mb = peakMb });
                table.Add([arch, "64", F(peakMb, "F0")]);
                AnsiConsole.MarkupLineInterpolated($"memory: fer train --arch {arch}: peak {peakMb:F0} MB resident");
            }
        }
        finally
        {
            runDir.Delete(recursive: true);
        }
        results["training_memory"] = rows;
    }
}

var facesPath = Fer2013Dataset.FindSharedData();
FaceDataset? testFaces = facesPath == null ? null : Fer2013Dataset.Load(facesPath, new DatasetLoadOptions { Splits = [DataSplit.PublicTest, DataSplit.PrivateTest] });
var faces = testFaces?.Subset(DataSplit.PrivateTest);

if (Wanted("accuracy"))
{
    if (testFaces == null || shipped.Count == 0)
    {
        AnsiConsole.MarkupLine("[yellow]accuracy table skipped: it needs ../shared FER2013 data and a shipped model[/]");
    }
    else
    {
        var table = report.Section("Accuracy of the shipped models on FER2013 (the same numbers as `fer evaluate`)", "model", "PrivateTest", "PrivateTest + flip TTA", "PrivateTest + crops TTA", "PublicTest", "macro F1 (PrivateTest)");
        var rows = new List<object>();
        foreach (var path in shipped)
        {
            using var model = EmotionModel.Load(path);
            if (!model.ClassNames.SequenceEqual(EmotionClasses.Fer2013)) continue; // FER+ models are scored on FER+ labels, not here
            var flip = Evaluator.Evaluate(model, faces!, new EvaluationOptions { Tta = TtaMode.Flip }, "PrivateTest");
            var crops = Evaluator.Evaluate(model, faces!, new EvaluationOptions { Tta = TtaMode.Crops, CompareWithoutTta = false }, "PrivateTest");
            var pub = Evaluator.Evaluate(model, testFaces.Subset(DataSplit.PublicTest), new EvaluationOptions(), "PublicTest");
            var plain = flip.WithoutTta!;
            var row = new { model = Path.GetFileName(path), private_test = plain.Accuracy, private_test_flip = flip.Metrics.Accuracy, private_test_crops = crops.Metrics.Accuracy, public_test = pub.Metrics.Accuracy, macro_f1 = plain.MacroF1 };
            rows.Add(row);
            table.Add([row.model, F(row.private_test, "P2"), F(row.private_test_flip, "P2"), F(row.private_test_crops, "P2"), F(row.public_test, "P2"), F(row.macro_f1, "F3")]);
            AnsiConsole.MarkupLineInterpolated($"accuracy {row.model}: PrivateTest {row.private_test:P2} (flip {row.private_test_flip:P2}, crops {row.private_test_crops:P2}), PublicTest {row.public_test:P2}");
        }
        results["accuracy"] = rows;
    }
    var votes = Fer2013Dataset.FindSharedData("fer2013new.csv");
    if (facesPath == null || votes == null || shipped.Count == 0)
    {
        AnsiConsole.MarkupLine("[yellow]FER+ accuracy table skipped: it needs ../shared fer2013.csv.gz and fer2013new.csv and a shipped model[/]");
    }
    else
    {
        // The FER+ test set: PrivateTest rows under the majority rule (unknown and not-a-face excluded). An 8-class
        // package is scored on all 8 classes; every package also on the 7 classes it shares with FER2013 (contempt
        // faces left out, the probabilities of the 7 renormalized), the only FER+ figure a 7-class model has.
        var ferPlus = Fer2013Dataset.Load(facesPath, new DatasetLoadOptions { FerPlusLabels = votes, Splits = [DataSplit.PrivateTest] });
        var withoutContempt = ferPlus.Select(Enumerable.Range(0, ferPlus.Count).Where(i => ferPlus.ClassNames[ferPlus.Labels[i]] != "contempt").ToList());
        var table = report.Section("Accuracy of the shipped models on FER+ (PrivateTest rows, majority rule: unknown and not-a-face faces excluded)",
            "model", "classes", "FER+ 8 classes", "macro F1 (8)", "FER+ 7 shared classes", "macro F1 (7)", "contempt recall");
        var rows = new List<object>();
        foreach (var path in shipped)
        {
            var network = Peers.Ours(path);
            try
            {
                var eight = network.Classes.Count == EmotionClasses.FerPlus.Count ? Peers.Score(network, ferPlus, EmotionClasses.FerPlus) : null;
                var seven = Peers.Score(network, withoutContempt, EmotionClasses.Fer2013);
                var contempt = eight?.PerClass.First(c => c.Name == "contempt").Recall;
                var row = new { model = network.Name, classes = network.Classes.Count, ferplus8_accuracy = eight?.Accuracy, ferplus8_macro_f1 = eight?.MacroF1, ferplus7_accuracy = seven.Accuracy, ferplus7_macro_f1 = seven.MacroF1, contempt_recall = contempt };
                rows.Add(row);
                table.Add([row.model, $"{row.classes}", eight is null ? "-" : F(eight.Accuracy, "P2"), eight is null ? "-" : F(eight.MacroF1, "F3"), F(seven.Accuracy, "P2"), F(seven.MacroF1, "F3"), contempt is { } c ? F(c, "P0") : "-"]);
                AnsiConsole.MarkupLineInterpolated($"FER+ accuracy {row.model}: 8 classes {(eight is null ? "-" : eight.Accuracy.ToString("P2"))}, 7 shared classes {seven.Accuracy:P2}");
            }
            finally
            {
                network.Owner?.Dispose();
            }
        }
        results["accuracy_ferplus"] = rows;
    }
}
if (Wanted("peers"))
{
    var peerVotes = Fer2013Dataset.FindSharedData("fer2013new.csv");
    if (facesPath == null || peerVotes == null || shipped.Count == 0)
    {
        AnsiConsole.MarkupLine("[yellow]peers skipped: they need ../shared fer2013.csv.gz and fer2013new.csv and a shipped model[/]");
    }
    else
    {
        var folder = Path.Combine(Repo.Root, "bench", "out", "peers");
        var (faceApiOnnx, humanOnnx, modules) = Peers.Prepare(folder);
        var networks = new List<Peers.Network>();
        var twoThreads = new List<Peers.Network>();
        try
        {
            var faceApi = Peers.FaceApi(faceApiOnnx);
            var human = Peers.Human(humanOnnx);
            var sample = Enumerable.Range(0, 16).Select(i => faces!.Face(i * 97).ToArray()).ToList();
            var (faceApiGap, humanGap) = Peers.Check(folder, modules, faceApi, human, sample);
            AnsiConsole.MarkupLineInterpolated($"peers: the ONNX conversions give their own runtime's probabilities within {faceApiGap:E1} (face-api) and {humanGap:E1} (human) on {sample.Count} faces");
            // A package with an int8 network runs it by default; its float network is timed beside it.
            networks.AddRange(shipped.Where(p => Path.GetFileName(p) is "fer2013-best" or "fer2013-realtime" or "ferplus-best")
                .SelectMany(p => ModelPackage.ReadMetadata(p).Int8 is null ? [Peers.Ours(p)] : new[] { Peers.Ours(p), Peers.Ours(p, NetworkPrecision.Float) }));
            networks.Add(faceApi);
            networks.Add(human);
            var ferPlus = Fer2013Dataset.Load(facesPath, new DatasetLoadOptions { FerPlusLabels = peerVotes, Splits = [DataSplit.PrivateTest] });
            ferPlus = ferPlus.Select(Enumerable.Range(0, ferPlus.Count).Where(i => ferPlus.ClassNames[ferPlus.Labels[i]] != "contempt").ToList());
            var sets = new (string Name, FaceDataset Data)[] { ("FER2013 PrivateTest (original pixels)", faces!), ("FER+ PrivateTest, majority, 7 shared classes", ferPlus) };
            var classes = EmotionClasses.Fer2013;
            var table = report.Section($"Peers on the same faces (each network's own preprocessing, ONNX Runtime 1 thread; conversions within {Math.Max(faceApiGap, humanGap):E1} of the peers' own runtime)",
                ["network", "test set", "accuracy", "macro F1", .. classes.Select(c => $"{c} recall"), "ms per face"]);
            var rows = new List<object>();
            // The real-time model on both cores of a 2-core host: timed only, its answers are the 1-thread network's.
            twoThreads.AddRange(shipped.Where(p => Path.GetFileName(p) == "fer2013-realtime").Select(p => Peers.Ours(p, threads: 2)));
            var latencies = Peers.Latencies([.. networks, .. twoThreads], faces!.Face(0).ToArray(), quick ? 200 : 600);
            foreach (var (network, latency) in twoThreads.Zip(latencies.Skip(networks.Count)))
            {
                rows.Add(new { network = network.Name, ms_per_face = latency });
                table.Add([network.Name, "(timed only)", "-", "-", .. classes.Select(_ => "-"), F(latency, "F2")]);
                AnsiConsole.MarkupLineInterpolated($"peers {network.Name}: {latency} ms per face");
            }
            foreach (var (network, latency) in networks.Zip(latencies))
            {
                foreach (var (setName, data) in sets)
                {
                    var m = Peers.Score(network, data, classes);
                    var row = new { network = network.Name, test_set = setName, faces = data.Count, accuracy = m.Accuracy, macro_f1 = m.MacroF1, recall = m.PerClass.ToDictionary(c => c.Name, c => c.Recall), ms_per_face = latency };
                    rows.Add(row);
                    table.Add([network.Name, setName, F(m.Accuracy, "P2"), F(m.MacroF1, "F3"), .. m.PerClass.Select(c => F(c.Recall, "P0")), F(latency, "F2")]);
                    AnsiConsole.MarkupLineInterpolated($"peers {network.Name} on {setName}: {m.Accuracy:P2}, macro F1 {m.MacroF1:F3}, {latency} ms per face");
                }
            }
            results["peers"] = new { face_api_max_difference = faceApiGap, human_max_difference = humanGap, rows };
        }
        finally
        {
            foreach (var network in networks.Concat(twoThreads)) network.Owner?.Dispose();
        }
    }
}
if (Wanted("detector") && faces != null)
{
    var table = report.Section("Face detector: recall and speed (640x480 scenes, one FER2013 PrivateTest face each; found = IoU ≥ 0.4; time on the upright scenes)",
        "detector", "upright, 80-200 px", "turned ±30°, 80-200 px", "small, 30-60 px", "other boxes (all scenes)", "median ms", "p90 ms");
    var count = quick ? 150 : 400;
    var sets = new[]
    {
        DetectorStudy.Scenes("upright", faces, count, 80, 200, 0),
        DetectorStudy.Scenes("turned", faces, count, 80, 200, 30),
        DetectorStudy.Scenes("small", faces, count, 30, 60, 0),
    };
    var variants = new DetectorStudy.Variant[]
    {
        new("BlazeFace, photo (default)", () => new BlazeFaceDetector()),
        new("BlazeFace, photo, look at 512 always (HintedFrom 1024)", () => new BlazeFaceDetector(new BlazeFaceOptions { HintedFrom = 1024 })),
        new("BlazeFace, video (fer video)", () => new BlazeFaceDetector(BlazeFaceOptions.Video)),
        new("Haar, photo", () => new HaarFaceDetector()),
        new("Haar, video", () => new HaarFaceDetector(HaarDetectorOptions.Video)),
        new("Haar, scale 1.2, 640 px", () => new HaarFaceDetector(new HaarDetectorOptions { ScaleFactor = 1.2, MaxDetectionSide = 640 })),
    };
    var rows = new List<object>();
    foreach (var variant in variants)
    {
        var r = DetectorStudy.Run(variant, sets);
        rows.Add(r);
        table.Add([r.Variant, .. r.Found, $"{r.OtherBoxes}", F(r.MedianMs), F(r.P90Ms)]);
        AnsiConsole.MarkupLineInterpolated($"detector {r.Variant}: found {string.Join(", ", r.Found)}, {r.OtherBoxes} other boxes, median {r.MedianMs} ms (p90 {r.P90Ms})");
    }
    foreach (var set in sets)
    {
        foreach (var (scene, _) in set.Scenes) scene.Dispose();
    }
    results["detector"] = rows;

    // Video: faces followed from frame to frame (fer video, the server's stream) against each frame seen alone.
    var clipCount = quick ? 40 : 100;
    var clipTable = report.Section($"Face detector in video: {clipCount} clips of 20 frames per size (640x480, one FER2013 PrivateTest face moving 1-4 px per frame; found = IoU ≥ 0.4; times over all frames)",
        "detector", "small, 30-60 px", "upright, 80-200 px", "other boxes", "median ms", "mean ms", "p90 ms");
    var clipSets = new[]
    {
        new DetectorStudy.ClipSet("small", faces, clipCount, 20, 30, 60),
        new DetectorStudy.ClipSet("upright", faces, clipCount, 20, 80, 200),
    };
    var clipVariants = new (DetectorStudy.Variant Variant, bool Follow)[]
    {
        (new("BlazeFace, video, followed (fer video)", () => new BlazeFaceDetector(BlazeFaceOptions.Video)), true),
        (new("BlazeFace, video, each frame alone", () => new BlazeFaceDetector(BlazeFaceOptions.Video)), false),
        (new("BlazeFace, photo, each frame alone", () => new BlazeFaceDetector()), false),
        (new("Haar, video", () => new HaarFaceDetector(HaarDetectorOptions.Video)), false),
    };
    var clipRows = new List<object>();
    foreach (var (variant, follow) in clipVariants)
    {
        var r = DetectorStudy.RunClips(variant, follow, clipSets);
        clipRows.Add(r);
        clipTable.Add([r.Variant, .. r.Found, $"{r.OtherBoxes}", F(r.MedianMs), F(r.MeanMs), F(r.P90Ms)]);
        AnsiConsole.MarkupLineInterpolated($"video detector {r.Variant}: found {string.Join(", ", r.Found)}, {r.OtherBoxes} other boxes, median {r.MedianMs} ms, mean {r.MeanMs} ms");
    }
    results["detector_video"] = clipRows;

    // False detections in real photos: point FERSHARP_BENCH_PHOTOS at a folder of them, e.g. OpenCV's sample
    // images (Debian's opencv-doc: usr/share/doc/opencv-doc/examples/data), which hold few faces.
    var photos = Environment.GetEnvironmentVariable("FERSHARP_BENCH_PHOTOS");
    if (!string.IsNullOrEmpty(photos) && Directory.Exists(photos))
    {
        var photoTable = report.Section($"Face detector: boxes found in the photos of FERSHARP_BENCH_PHOTOS ({Path.GetFileName(Path.TrimEndingDirectorySeparator(photos))}/, photo settings)", "image", "BlazeFace", "Haar");
        using var blazeFace = new BlazeFaceDetector();
        using var haar = new HaarFaceDetector();
        var byBlazeFace = DetectorStudy.CountInFolder(blazeFace, photos);
        var byHaar = DetectorStudy.CountInFolder(haar, photos);
        foreach (var (image, n) in byBlazeFace)
        {
            if (n + byHaar[image] > 0) photoTable.Add([image, $"{n}", $"{byHaar[image]}"]);
        }
        photoTable.Add([$"all {byBlazeFace.Count} images", $"{byBlazeFace.Values.Sum()}", $"{byHaar.Values.Sum()}"]);
        results["detector_photos"] = new { folder = photos, images = byBlazeFace.Count, blazeface = byBlazeFace, haar = byHaar };
    }
}
if ((Wanted("photo") || Wanted("video")) && (faces == null || shipped.Count == 0))
{
    AnsiConsole.MarkupLine("[yellow]photo/video benchmarks skipped: they need ../shared FER2013 faces and a shipped model[/]");
}
else
{
    using var recognizer = EmotionRecognizer.Load(modelOption);
    var modelLabel = modelOption == null ? "shipped default model" : "model";
    results["pipeline_model"] = recognizer.Model.Metadata.Name;
    var sceneFaces = Scenes.DetectableFaces(faces!, recognizer, 5);
    if (Wanted("photo"))
    {
        var table = report.Section($"Photo pipeline (decode excluded: detect + crop + classify), {modelLabel} ({recognizer.Model.Metadata.Name})", "image", "faces (detected)", "threads per call", "median ms", "p99 ms", "min–max ms", "detect median ms", "crop + classify median ms");
        var rows = new List<object>();
        // One thread per call is how the server runs each request; every core per call is how `fer predict` and
        // `fer video` run, one photo or frame at a time.
        using var allCores = EmotionRecognizer.Load(modelOption, new RecognizerOptions { ThreadsPerCall = Environment.ProcessorCount });
        foreach (var (w, h) in new[] { (640, 480), (1920, 1080) })
            foreach (var n in new[] { 1, 5 })
                foreach (var pipeline in new[] { recognizer, allCores })
                {
                    using var image = Scenes.Build(sceneFaces, w, h, n);
                    var callThreads = pipeline.Options.ThreadsPerCall;
                    var found = pipeline.Recognize(image).Count;
                    var samples = Timing.Measure(quick ? 10 : 30, warmup: 3, () => pipeline.Recognize(image));
                    var ms = samples.Select(t => t * 1000).Order().ToArray();
                    // The two steps apart: where a photo's time goes.
                    var (boxes, finding) = pipeline.Locate(image);
                    var detectMs = Timing.Measure(quick ? 10 : 30, warmup: 3, () => pipeline.Locate(image)).Select(t => t * 1000).Order().ToArray();
                    var classifyMs = Timing.Measure(quick ? 10 : 30, warmup: 3, () => pipeline.Classify(image, boxes, pipeline.Options.Tta, finding)).Select(t => t * 1000).Order().ToArray();
                    var row = new { size = $"{w}x{h}", faces = n, detected = found, threads_per_call = callThreads, median_ms = Math.Round(Stats.Percentile(ms, 50), 2), p99_ms = Math.Round(Stats.Percentile(ms, 99), 2), min_ms = Math.Round(ms[0], 2), max_ms = Math.Round(ms[^1], 2), detect_median_ms = Math.Round(Stats.Percentile(detectMs, 50), 2), classify_median_ms = Math.Round(Stats.Percentile(classifyMs, 50), 2) };
                    rows.Add(row);
                    table.Add([row.size, $"{n} ({found})", $"{callThreads}", F(row.median_ms), F(row.p99_ms), $"{F(row.min_ms)}–{F(row.max_ms)}", F(row.detect_median_ms), F(row.classify_median_ms)]);
                    AnsiConsole.MarkupLineInterpolated($"photo {row.size} with {n} face(s) ({found} detected), {callThreads} thread(s) per call: median {row.median_ms} ms (min {row.min_ms}, max {row.max_ms}); detect {row.detect_median_ms} ms, crop + classify {row.classify_median_ms} ms");
                }
        results["photo"] = rows;

        // A group photo is what the looks from 1024 on are for: their hinting must keep its faces.
        var groupTable = report.Section("Face detector on a group photo (1920x1080, 32 FER2013 PrivateTest faces of 106 px; found = IoU ≥ 0.4)", "BlazeFace looks", "found of 32", "detect median ms", "min–max ms");
        var groupRows = new List<object>();
        using var group = Scenes.Group(faces!, 32, 106);
        foreach (var (label, options) in new[]
        {
            ("up to 1024, hinted (default)", new BlazeFaceOptions()),
            ("up to 1024, every look (--every-look)", new BlazeFaceOptions { HintScore = 0 }),
            ("up to 512 (--max-look 512)", new BlazeFaceOptions { MaxSide = 512 }),
        })
        {
            using var detector = new BlazeFaceDetector(options);
            var boxes = detector.Detect(group.Image);
            var found = group.Truths.Count(t => boxes.Any(b => b.IoU(t) >= 0.4));
            var ms = Timing.Measure(quick ? 5 : 15, warmup: 2, () => detector.Detect(group.Image)).Select(t => t * 1000).ToArray();
            var stats = Stats.Of(ms);
            groupRows.Add(new { looks = label, found, detect_ms = stats });
            groupTable.Add([label, $"{found}", F(stats.Median), $"{F(stats.Min)}–{F(stats.Max)}"]);
            AnsiConsole.MarkupLineInterpolated($"group photo, BlazeFace {label}: {found} of 32 found, detect {stats} ms");
        }
        results["group_photo"] = groupRows;
    }
    if (Wanted("video"))
    {
        // As `fer video` runs by default: the fast detector settings, the network on every core.
        using var videoRecognizer = EmotionRecognizer.Load(modelOption, RecognizerOptions.Video with { ThreadsPerCall = Environment.ProcessorCount });
        var table = report.Section($"Video end to end (MJPEG decode + detect + classify + track; `fer video` defaults: fast detection), {modelLabel} ({videoRecognizer.Model.Metadata.Name})", "video", "faces (found per frame)", "frames", "FPS");
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
                        using var frame = Scenes.Build(sceneFaces, w, h, n, shift: f);
                        writer.Write(frame);
                    }
                }
                var fps = new List<double>();
                var found = 0.0;
                for (var r = 0; r < runs; r++)
                {
                    var summary = VideoRecognition.Process(videoRecognizer, clip);
                    fps.Add(summary.FramesPerSecond);
                    found = (double)summary.FaceDetections / Math.Max(1, summary.FramesAnalyzed);
                }
                var stats = Stats.Of(fps);
                rows.Add(new { size = $"{w}x{h}", faces = n, found_per_frame = Math.Round(found, 2), frames, fps = stats });
                table.Add([$"{w}x{h}", $"{n} ({found:F2})", $"{frames}", S(stats)]);
                AnsiConsole.MarkupLineInterpolated($"video {w}x{h} with {n} face(s), {found:F2} found per frame: {stats} FPS end to end (decode + detect + classify + track)");
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
        using var scene = Scenes.Build(sceneFaces, 640, 480, 1);
        var jpeg = scene.ImEncode(".jpg");
        var load = ServerLoad.RunAsync(recognizer, jpeg, [1, 4, 16], TimeSpan.FromSeconds(quick ? 8 : 20), quick ? 1000 : 4000).GetAwaiter().GetResult();
        var table = report.Section("Server under load (loopback, POST /api/v1/recognize, 640x480 JPEG with one face)", "clients", "requests (errors)", "req/s", "p50 ms", "p95 ms", "p99 ms", "working set MB before → after (peak)");
        foreach (var r in load)
        {
            table.Add([$"{r.Clients}", $"{r.Requests} ({r.Errors})", F(r.RequestsPerSecond), F(r.P50Ms), F(r.P95Ms), F(r.P99Ms), $"{F(r.WorkingSetBeforeMb, "F0")} → {F(r.WorkingSetAfterMb, "F0")} ({F(r.PeakWorkingSetMb, "F0")})"]);
            AnsiConsole.MarkupLineInterpolated($"server {r.Clients,2} clients: {r.RequestsPerSecond} req/s, p50 {r.P50Ms} ms, p95 {r.P95Ms} ms, p99 {r.P99Ms} ms, {r.Errors} errors of {r.Requests}; working set {r.WorkingSetBeforeMb} -> {r.WorkingSetAfterMb} MB (peak {r.PeakWorkingSetMb})");
        }
        results["server"] = load;
        var path = RequestPath.Measure(recognizer, jpeg, quick ? 100 : 300, load[0].P50Ms);
        var pathTable = report.Section("Server request path (one 640x480 JPEG with one face, one request at a time; stages timed in the process)", "stage", "median ms", "p90 ms", "share of a 1-client request");
        foreach (var stage in path)
        {
            pathTable.Add([stage.Stage, F(stage.MedianMs), stage.P90Ms is { } p90 ? F(p90) : "-", $"{stage.Share:P0}"]);
            AnsiConsole.MarkupLineInterpolated($"request path, {stage.Stage}: median {stage.MedianMs} ms ({stage.Share:P0})");
        }
        results["server_request_path"] = path;
        var overload = ServerLoad.OverloadAsync(recognizer, jpeg, 16, quick ? 5 : 20).GetAwaiter().GetResult();
        var overloadTable = report.Section("Server overload (bursts of 16 simultaneous requests; one recognition at a time, no queue)", "requests", "refused 503", "with Retry-After", "503 median ms", "503 max ms", "accepted median ms");
        overloadTable.Add([$"{overload.Requests}", $"{overload.Refused}", $"{overload.RefusedWithRetryAfter}", F(overload.RefusedMedianMs), F(overload.RefusedMaxMs), F(overload.AcceptedMedianMs)]);
        AnsiConsole.MarkupLineInterpolated($"overload: {overload.Refused} of {overload.Requests} refused with 503 ({overload.RefusedWithRetryAfter} with Retry-After) in a median {overload.RefusedMedianMs} ms (max {overload.RefusedMaxMs}); accepted ones {overload.AcceptedMedianMs} ms");
        results["server_overload"] = overload;
    }
    if (Wanted("soak"))
    {
        using var scene = Scenes.Build(sceneFaces, 640, 480, 1);
        var jpeg = scene.ImEncode(".jpg");
        var cli = Path.Combine(Repo.Root, "src", "FerSharp.Cli", "bin", "Release", "net10.0", "fer.dll");
        var soak = ServerSoak.RunAsync(cli, modelOption ?? "fer2013-realtime", jpeg, quick ? 2000 : 5000, 4).GetAwaiter().GetResult();
        var table = report.Section("Server soak (a real fer serve process on loopback, 4 clients, one request in five bad; resident memory from /proc, read after 3 s idle)",
            "requests", "good: answered 200", "bad: answered 4xx", "seconds", "resident MB after warm-up → after (peak)", "managed heap MB");
        table.Add([$"{soak.Requests}", $"{soak.Good - soak.GoodFailures} of {soak.Good}", $"{soak.Bad - soak.BadAnsweredWrongly} of {soak.Bad}", F(soak.Seconds, "F1"),
            $"{F(soak.ResidentAfterWarmUpMb, "F0")} → {F(soak.ResidentAfterMb, "F0")} ({F(soak.PeakResidentMb, "F0")})", $"{F(soak.ManagedAfterWarmUpMb, "F0")} → {F(soak.ManagedAfterMb, "F0")}"]);
        AnsiConsole.MarkupLineInterpolated($"soak: {soak.Requests} requests in {soak.Seconds} s; good {soak.Good - soak.GoodFailures}/{soak.Good} answered 200, bad {soak.Bad - soak.BadAnsweredWrongly}/{soak.Bad} answered 4xx; resident {soak.ResidentAfterWarmUpMb} -> {soak.ResidentAfterMb} MB (peak {soak.PeakResidentMb}), managed heap {soak.ManagedAfterWarmUpMb} -> {soak.ManagedAfterMb} MB");
        foreach (var answer in soak.Unexpected.Take(10)) AnsiConsole.MarkupLineInterpolated($"[yellow]soak: unexpected answer: {answer}[/]");
        results["soak"] = soak;
    }
}

if (Wanted("scalar-race"))
{
    var jit = Environment.GetEnvironmentVariable("DOTNET_JITMinOpts") is { Length: > 0 } v ? $"DOTNET_JITMinOpts={v}" : "optimizing JIT";
    var race = ScalarRace.Run(TimeSpan.FromSeconds(quick ? 5 : 15));
    var table = report.Section("TorchSharp temporary scalars under GC pressure (one thread adds 1 to a tensor, one allocates)", "call", "JIT", "calls", "errors", "wrong counts");
    foreach (var r in race)
    {
        table.Add([r.Variant, jit, $"{r.Calls}", $"{r.Errors}", $"{r.WrongCounts}"]);
        AnsiConsole.MarkupLineInterpolated($"scalar race, {r.Variant} ({jit}): {r.Errors} errors and {r.WrongCounts} wrong counts in {r.Calls} calls");
    }
    results["scalar_race"] = new { jit, variants = race };
}

var json = JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true });
// bench/results.json and docs/BENCHMARKS.md describe the same full run; partial runs go to bench/out/.
var fullRun = only == null && threadOption == null && modelOption == null;
var resultsPath = Path.Combine(fullRun ? outDir : Directory.CreateDirectory(Path.Combine(outDir, "out")).FullName, "results.json");
File.WriteAllText(resultsPath + ".tmp", json);
File.Move(resultsPath + ".tmp", resultsPath, overwrite: true);
AnsiConsole.MarkupLineInterpolated($"wrote {resultsPath}");
report.PrintSummary();
if (fullRun)
{
    var docs = Path.Combine(Repo.Root, "docs", "BENCHMARKS.md");
    Report.WriteWhole(docs, report.ToMarkdown(machine, "bench/run" + (quick ? " --quick" : ""), (string)results["date"]));
    AnsiConsole.MarkupLineInterpolated($"rewrote {docs}");
}
else
{
    AnsiConsole.MarkupLine("[grey]--only/--threads/--model: docs/BENCHMARKS.md left as it is (it holds the full run with default settings)[/]");
}
return 0;
