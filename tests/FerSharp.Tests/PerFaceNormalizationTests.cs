using System.Runtime.InteropServices;

using FerSharp.Data;
using FerSharp.Models;

using OpenCvSharp;
using OpenCvSharp.Dnn;

using static TorchSharp.torch;

namespace FerSharp.Tests;

/// <summary>
/// A package's per-face normalization is one definition applied the same way by training, the TorchSharp
/// engine, ONNX Runtime and OpenCV running the package's graph, and the exported graph run on its own.
/// </summary>
[Collection("torch")]
public sealed class PerFaceNormalizationTests
{
    private static EmotionModel Standardizing(string architecture, bool flip, double mean = 0, double std = 1) =>
        new(new ModelMetadata
        {
            Name = "per-face",
            Architecture = architecture,
            ClassNames = EmotionClasses.Fer2013,
            Normalization = new Normalization(mean, std) { PerFace = Normalization.PerFaceStandardize },
            FlipAveraging = flip,
        }, FoldedNetworkTests.Randomized(architecture, 4));

    /// <summary>Faces of middling contrast, so brightness and contrast can change without clipping.</summary>
    private static byte[][] Faces(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var face = new byte[FaceDataset.PixelsPerImage];
            var (low, span) = (random.Next(40, 90), random.Next(60, 120));
            for (var p = 0; p < face.Length; p++)
            {
                // A smooth shape plus noise: something a network responds to, unlike pure noise.
                var (y, x) = (p / 48, p % 48);
                var shape = 0.5 + 0.5 * Math.Sin(x / 6.0 + seed) * Math.Cos(y / 8.0);
                face[p] = (byte)(low + span * (0.7 * shape + 0.3 * random.NextDouble()));
            }
            return face;
        }).ToArray();
    }

    [Theory]
    [InlineData("fast-cnn", true, 0, 1)]
    [InlineData("resnet-small", false, 0.1, 1.5)]
    [InlineData("mini-xception", true, 0, 1)]
    public void TorchSharp_the_lean_engines_and_the_exported_graph_give_the_same_probabilities(string architecture, bool flip, double mean, double std)
    {
        using var dir = new TempDir();
        using var model = Standardizing(architecture, flip, mean, std);
        model.Save(dir.File("pkg"));
        var faces = Faces(5, seed: 3);

        var torch = model.PredictProbabilities(faces);
        using var onnxRuntime = OnnxFaceClassifier.Load(dir.File("pkg"));
        using var openCv = OnnxFaceClassifier.Load(dir.File("pkg"), new ClassifierOptions { Engine = InferenceEngine.OpenCv });
        var engines = new Dictionary<string, float[][]>
        {
            ["ONNX Runtime"] = onnxRuntime.PredictProbabilities(faces),
            ["OpenCV"] = openCv.PredictProbabilities(faces),
            ["the exported graph run on its own"] = RunExportedGraph(OnnxExport.Export(model), faces, flip),
        };

        foreach (var (engine, rows) in engines)
        {
            for (var i = 0; i < faces.Length; i++)
            {
                for (var c = 0; c < torch[i].Length; c++)
                {
                    Assert.True(Math.Abs(torch[i][c] - rows[i][c]) <= 1e-4, $"face {i} class {c}: TorchSharp {torch[i][c]}, {engine} {rows[i][c]}");
                }
            }
        }
        // Something to compare: the answers differ from face to face by several times the tolerance.
        var spread = Enumerable.Range(0, torch[0].Length).Max(c => torch.Max(row => row[c]) - torch.Min(row => row[c]));
        Assert.True(spread > 5e-4, $"the outputs hardly depend on the face (spread {spread})");
    }

    [Fact]
    public void Brightness_and_contrast_do_not_change_the_answer()
    {
        using var dir = new TempDir();
        using var model = Standardizing("fast-cnn", flip: false);
        model.Save(dir.File("pkg"));
        using var lean = OnnxFaceClassifier.Load(dir.File("pkg"));
        var faces = Faces(4, seed: 9);
        // Within 0..255 for these faces: 1.6 * (≤ 210) - 40 ≤ 296 would clip, so scale about the middle instead.
        var changed = faces.Select(face => face.Select(p => (byte)Math.Clamp(Math.Round(128 + 1.4 * (p - 110) + 20), 0, 255)).ToArray()).ToArray();
        Assert.All(changed, face => Assert.True(face.All(p => p is > 0 and < 255), "the change clipped a pixel"));
        foreach (var (engine, predict) in new (string, Func<byte[][], float[][]>)[] { ("TorchSharp", f => model.PredictProbabilities(f)), ("ONNX Runtime", f => lean.PredictProbabilities(f)) })
        {
            var before = predict(faces);
            var after = predict(changed);
            for (var i = 0; i < faces.Length; i++)
            {
                // Rounding to whole grey levels is all that differs.
                Assert.True(before[i].Zip(after[i]).Max(pair => Math.Abs(pair.First - pair.Second)) < 5e-3,
                    $"{engine}, face {i}: {string.Join(",", before[i])} against {string.Join(",", after[i])}");
            }
        }
    }

    [Fact]
    public void A_package_with_an_unknown_normalization_is_refused_by_name()
    {
        using var dir = new TempDir();
        using (var model = Standardizing("fast-cnn", flip: false))
        {
            model.Save(dir.File("pkg"));
        }
        var json = dir.File("pkg/model.json");
        File.WriteAllText(json, File.ReadAllText(json).Replace("\"per_face\": \"standardize\"", "\"per_face\": \"clahe\""));
        foreach (var load in new Func<IDisposable>[] { () => EmotionModel.Load(dir.File("pkg")), () => OnnxFaceClassifier.Load(dir.File("pkg")) })
        {
            var error = Assert.Throws<InvalidDataException>(load);
            Assert.Contains("per_face 'clahe'", error.Message);
            Assert.Contains("model.json", error.Message);
        }
    }

    [Fact]
    public void A_saved_package_keeps_its_normalization()
    {
        using var dir = new TempDir();
        using (var model = Standardizing("fast-cnn", flip: false, mean: 0.25, std: 2))
        {
            model.Save(dir.File("pkg"));
        }
        using var loaded = EmotionModel.Load(dir.File("pkg"));
        Assert.Equal(Normalization.PerFaceStandardize, loaded.Metadata.Normalization.PerFace);
        Assert.Equal(0.25, loaded.Metadata.Normalization.Mean);
        Assert.Equal(ModelMetadata.CurrentFormatVersion, loaded.Metadata.FormatVersion);
    }

    /// <summary>The graph as another runtime would use it: grey pixels in, softmax (and mirror averaging) by the caller.</summary>
    private static float[][] RunExportedGraph(byte[] onnx, byte[][] faces, bool flip)
    {
        using var net = CvDnn.ReadNetFromOnnx(onnx)!;
        var views = flip ? 2 : 1;
        var count = faces.Length;
        var input = new float[views * count * FaceDataset.PixelsPerImage];
        for (var i = 0; i < count; i++)
        {
            for (var p = 0; p < FaceDataset.PixelsPerImage; p++)
            {
                input[i * FaceDataset.PixelsPerImage + p] = faces[i][p];
                if (flip) input[(count + i) * FaceDataset.PixelsPerImage + p / 48 * 48 + 47 - p % 48] = faces[i][p];
            }
        }
        using var blob = new Mat([views * count, 1, 48, 48], MatType.CV_32F);
        Marshal.Copy(input, 0, blob.Data, input.Length);
        net.SetInput(blob);
        using var output = net.Forward();
        var classes = output.Size(1);
        var logits = new float[views * count * classes];
        Marshal.Copy(output.Data, logits, 0, logits.Length);
        return Enumerable.Range(0, count).Select(i =>
        {
            var row = Softmax(logits.AsSpan(i * classes, classes));
            if (!flip) return row;
            var mirrored = Softmax(logits.AsSpan((count + i) * classes, classes));
            return row.Zip(mirrored, (a, b) => (a + b) / 2).ToArray();
        }).ToArray();
    }

    private static float[] Softmax(ReadOnlySpan<float> logits)
    {
        var max = float.NegativeInfinity;
        foreach (var value in logits) max = Math.Max(max, value);
        var result = new float[logits.Length];
        var sum = 0f;
        for (var c = 0; c < logits.Length; c++) sum += result[c] = MathF.Exp(logits[c] - max);
        for (var c = 0; c < logits.Length; c++) result[c] /= sum;
        return result;
    }
}
