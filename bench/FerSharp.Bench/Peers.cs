using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;

using Microsoft.ML.OnnxRuntime;

using OpenCvSharp;

namespace FerSharp.Bench;

/// <summary>
/// The peers' expression networks next to ours on the same faces: face-api.js's FaceExpressionNet and human's
/// emotion network (oarriaga's mini-Xception), taken from their npm packages, converted to ONNX by
/// tools/TfjsToOnnx, checked against the peers' own runtime (TensorFlow.js) on a sample, and run on ONNX Runtime
/// with each peer's own preprocessing. Their weights are downloaded into bench/out/peers, never committed.
/// </summary>
internal static class Peers
{
    /// <summary>A network that maps 48x48 grey faces to probabilities over its own classes.</summary>
    public sealed record Network(string Name, IReadOnlyList<string> Classes, Func<IReadOnlyList<byte[]>, float[][]> Predict, IDisposable? Owner);

    /// <summary>Installs the npm packages (bench/peers/package.json) into <paramref name="folder"/> and converts both networks.</summary>
    public static (string FaceApi, string Human, string Modules) Prepare(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var file in new[] { "package.json", "peers.js" })
        {
            File.Copy(Path.Combine(Repo.Root, "bench", "peers", file), Path.Combine(folder, file), overwrite: true);
        }
        var modules = Path.Combine(folder, "node_modules");
        if (!File.Exists(Path.Combine(modules, "@vladmandic", "human-models", "models", "emotion.json")))
        {
            Run("npm", folder, "install", "--no-audit", "--no-fund", "--ignore-scripts");
        }
        var converter = Path.Combine(Repo.Root, "tools", "TfjsToOnnx", "bin", "Release", "net10.0", "tfjs-to-onnx.dll");
        if (!File.Exists(converter)) Run("dotnet", Repo.Root, "build", Path.Combine(Repo.Root, "tools", "TfjsToOnnx", "TfjsToOnnx.csproj"), "-c", "Release", "-nologo", "-v", "quiet");
        var faceApi = Path.Combine(folder, "face-api-expression.onnx");
        var human = Path.Combine(folder, "human-emotion.onnx");
        Run("dotnet", folder, converter, "--face-api-expression", Path.Combine(modules, "@vladmandic", "face-api", "model", "face_expression_model-weights_manifest.json"), faceApi);
        Run("dotnet", folder, converter, Path.Combine(modules, "@vladmandic", "human-models", "models", "emotion.json"), human);
        return (faceApi, human, modules);
    }

    /// <summary>face-api.js: 112x112 RGB (the grey face in each channel), the mean colour subtracted and /255 inside the graph.</summary>
    public static Network FaceApi(string onnx) => Onnx("face-api.js FaceExpressionNet", onnx,
        ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"], 112, 3, pixel => pixel);

    /// <summary>human: 64x64 grey scaled to -1..1.</summary>
    public static Network Human(string onnx) => Onnx("human emotion (mini-Xception)", onnx,
        ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"], 64, 1, pixel => pixel / 127.5f - 1);

    /// <summary>A shipped package on ONNX Runtime, as recognition runs it.</summary>
    public static Network Ours(string package, NetworkPrecision precision = NetworkPrecision.Auto, int threads = 1)
    {
        var classifier = OnnxFaceClassifier.Load(package, new ClassifierOptions { Precision = precision, Threads = threads });
        var name = Path.GetFileName(package) + (classifier.IsInt8 ? " (int8)" : classifier.Metadata.Int8 is null ? "" : " (float)")
            + (threads == 1 ? "" : $", {threads} threads");
        return new Network(name, classifier.ClassNames, faces => classifier.PredictProbabilities(faces), classifier);
    }

    private static Network Onnx(string name, string path, IReadOnlyList<string> classes, int side, int channels, Func<float, float> scale)
    {
        var options = new SessionOptions { IntraOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
        var session = new InferenceSession(path, options);
        var input = session.InputNames[0];
        float[][] Predict(IReadOnlyList<byte[]> faces) => faces.Select(face =>
        {
            using var run = new RunOptions();
            using var tensor = OrtValue.CreateTensorValueFromMemory(Input(face, side, channels, scale), [1, channels, side, side]);
            using var outputs = session.Run(run, [input], [tensor], session.OutputNames);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }).ToArray();
        return new Network(name, classes, Predict, session);
    }

    /// <summary>A 48x48 face enlarged bilinearly to the peer's side, NCHW, each channel the grey face.</summary>
    public static float[] Input(byte[] face, int side, int channels, Func<float, float> scale)
    {
        using var grey = Mat.FromPixelData(FaceDataset.ImageSize, FaceDataset.ImageSize, MatType.CV_8UC1, face);
        using var resized = grey.Resize(new Size(side, side), 0, 0, InterpolationFlags.Linear);
        resized.GetArray(out byte[] pixels);
        var input = new float[channels * side * side];
        for (var c = 0; c < channels; c++)
        {
            for (var p = 0; p < pixels.Length; p++) input[c * pixels.Length + p] = scale(pixels[p]);
        }
        return input;
    }

    /// <summary>
    /// The largest difference between each converted network's probabilities and its own runtime's (TensorFlow.js
    /// on WebAssembly, through bench/peers/peers.js) on the same inputs.
    /// </summary>
    public static (double FaceApi, double Human) Check(string folder, string modules, Network faceApi, Network human, IReadOnlyList<byte[]> faces)
    {
        var faceApiInput = faces.SelectMany(f => Nhwc(Input(f, 112, 3, p => p), 112, 3)).ToArray();
        var humanInput = faces.SelectMany(f => Input(f, 64, 1, p => p / 127.5f - 1)).ToArray();
        File.WriteAllBytes(Path.Combine(folder, "face-api.bin"), MemoryMarshal.AsBytes(faceApiInput.AsSpan()).ToArray());
        File.WriteAllBytes(Path.Combine(folder, "human.bin"), MemoryMarshal.AsBytes(humanInput.AsSpan()).ToArray());
        var output = Path.Combine(folder, "reference.json");
        Run("node", folder, "peers.js", Path.Combine(modules, "@vladmandic", "face-api", "model"), Path.Combine(modules, "@vladmandic", "human-models", "models", "emotion.json"),
            "face-api.bin", "human.bin", faces.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), output);
        using var reference = JsonDocument.Parse(File.ReadAllText(output));
        double Worst(string key, Network network)
        {
            var ours = network.Predict(faces);
            return reference.RootElement.GetProperty(key).EnumerateArray()
                .Select((row, i) => row.EnumerateArray().Select((v, c) => Math.Abs(v.GetDouble() - ours[i][c])).Max()).Max();
        }
        return (Worst("faceApi", faceApi), Worst("human", human));
    }

    private static float[] Nhwc(float[] nchw, int side, int channels)
    {
        var result = new float[nchw.Length];
        for (var c = 0; c < channels; c++)
        {
            for (var p = 0; p < side * side; p++) result[p * channels + c] = nchw[c * side * side + p];
        }
        return result;
    }

    /// <summary>Accuracy, macro F1 and per-class recall over <paramref name="classes"/> (a network's other classes are ignored).</summary>
    public static ClassificationMetrics Score(Network network, FaceDataset data, IReadOnlyList<string> classes)
    {
        var faces = Enumerable.Range(0, data.Count).Select(i => data.Face(i).ToArray()).ToList();
        var rows = network.Predict(faces);
        var columns = classes.Select(c => network.Classes.Select(n => EmotionClasses.Canonical(n)).ToList().IndexOf(c)).ToArray();
        if (columns.Any(c => c < 0)) throw new InvalidOperationException($"{network.Name} lacks one of {string.Join(", ", classes)}");
        var probabilities = rows.Select(row =>
        {
            var shared = columns.Select(c => row[c]).ToArray();
            var sum = shared.Sum();
            return shared.Select(p => p / sum).ToArray();
        }).ToList();
        var truth = Enumerable.Range(0, data.Count).Select(i => classes.ToList().IndexOf(EmotionClasses.Canonical(data.ClassNames[data.Labels[i]])!)).ToList();
        return ClassificationMetrics.Compute(classes, classes.Select(_ => true).ToList(), truth, probabilities);
    }

    /// <summary>
    /// Median ms per one-face call of each network, its preprocessing included, measured in interleaved rounds
    /// (each round times every network in turn) so that the machine's drift during the section falls on all of
    /// them alike.
    /// </summary>
    public static IReadOnlyList<double> Latencies(IReadOnlyList<Network> networks, byte[] face, int calls, int rounds = 10)
    {
        IReadOnlyList<byte[]> one = [face];
        var samples = networks.Select(_ => new List<double>()).ToList();
        for (var round = 0; round < rounds; round++)
        {
            for (var k = 0; k < networks.Count; k++)
            {
                var network = networks[k];
                samples[k].AddRange(Timing.Measure(Math.Max(1, calls / rounds), warmup: round == 0 ? 20 : 2, () => network.Predict(one)).Select(t => t * 1000));
            }
        }
        return samples.Select(s => Math.Round(Stats.Percentile(s.Order().ToArray(), 50), 3)).ToList();
    }

    private static void Run(string program, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {stderr.Result}{stdout.Result}");
    }
}
