using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;

using Microsoft.ML.OnnxRuntime;

using Onnx;

using ModelMetadata = FerSharp.Models.ModelMetadata;

namespace FerSharp.Tests;

/// <summary><c>fer models quantize</c>: a package's int8 network, how recognition picks it, and what drops it.</summary>
[Collection("torch")]
public class Int8QuantizationTests
{
    /// <summary>Faces with structure (gradients, a blob, noise) at several brightnesses and contrasts.</summary>
    private static List<byte[]> Faces(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(k =>
        {
            var face = new byte[FaceDataset.PixelsPerImage];
            var (cx, cy, contrast) = (random.Next(14, 34), random.Next(14, 34), random.Next(20, 90));
            for (var p = 0; p < face.Length; p++)
            {
                var (y, x) = (p / 48, p % 48);
                var blob = Math.Exp(-((x - cx) * (x - cx) + (y - cy) * (y - cy)) / 80.0);
                face[p] = (byte)Math.Clamp(40 + k % 7 * 20 + contrast * blob + 25 * Math.Sin(x / (3.0 + k % 5) + y / 7.0) + random.Next(-12, 13), 0, 255);
            }
            return face;
        }).ToList();
    }

    private static string SavedPackage(TempDir dir, string architecture = "fast-cnn")
    {
        using var model = OnnxExportTests.Untrained(architecture, seed: 5, flip: true);
        model.UpdateMetadata(m => m with { Normalization = new Normalization { PerFace = Normalization.PerFaceStandardize } });
        var folder = dir.File("pkg");
        model.Save(folder, float16: true);
        return folder;
    }

    [Theory]
    [InlineData("fast-cnn")]
    [InlineData("vgg-bn")]
    public void The_int8_network_runs_integer_convolutions_and_answers_close_to_the_float_network(string architecture)
    {
        using var dir = new TempDir();
        var folder = SavedPackage(dir, architecture);
        var metadata = Int8Quantization.AddTo(folder, Faces(64, seed: 1), "64 synthetic faces");

        // ONNX Runtime must turn the QDQ form into integer convolutions, or nothing is gained.
        var optimized = dir.File("optimized.onnx");
        using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = optimized })
        using (new InferenceSession(Path.Combine(folder, ModelMetadata.Int8FileName), options))
        {
        }
        var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.Select(n => n.OpType).ToList();
        var convolutions = architecture == "fast-cnn" ? 4 : 8;
        Assert.Equal(convolutions, ops.Count(op => op == "QLinearConv"));
        Assert.DoesNotContain("Conv", ops);

        using var exact = OnnxFaceClassifier.Load(folder, new ClassifierOptions { Precision = NetworkPrecision.Float });
        using var int8 = OnnxFaceClassifier.Load(folder);
        Assert.True(int8.IsInt8);
        Assert.False(exact.IsInt8);
        Assert.Equal(metadata.Int8, int8.Metadata.Int8);
        var faces = Faces(40, seed: 2);
        var pixels = FaceViews.Build(faces, TtaMode.None, flipAveraging: false);
        var expected = exact.Forward(pixels, faces.Count, out var classes);
        var actual = int8.Forward(pixels, faces.Count, out _);
        // Quantization error is a few percent of the logits' spread; a wrong scale or channel order is far more.
        var mean = expected.Average();
        var spread = Math.Sqrt(expected.Average(v => (v - mean) * (v - mean)));
        var error = Math.Sqrt(expected.Zip(actual).Average(p => (p.First - p.Second) * (p.First - p.Second)));
        Assert.True(error < 0.1 * spread, $"{architecture}: int8 logits off by {error:G3} (rms) against a spread of {spread:G3}");
        Assert.Equal(faces.Count * classes, actual.Length);
    }

    [Fact]
    public void Recognition_picks_the_int8_network_by_default_on_ONNX_Runtime_only_and_refuses_what_it_cannot_run()
    {
        using var dir = new TempDir();
        var folder = SavedPackage(dir);
        var refused = Assert.Throws<InvalidDataException>(() => OnnxFaceClassifier.Load(folder, new ClassifierOptions { Precision = NetworkPrecision.Int8 }));
        Assert.Contains("fer models quantize", refused.Message, StringComparison.Ordinal);
        using (var plain = OnnxFaceClassifier.Load(folder)) Assert.False(plain.IsInt8);

        Int8Quantization.AddTo(folder, Faces(16, seed: 3), "16 synthetic faces");
        using (var auto = OnnxFaceClassifier.Load(folder)) Assert.True(auto.IsInt8);
        using (var openCv = OnnxFaceClassifier.Load(folder, new ClassifierOptions { Engine = InferenceEngine.OpenCv })) Assert.False(openCv.IsInt8);
        Assert.Throws<NotSupportedException>(() => OnnxFaceClassifier.Load(folder, new ClassifierOptions { Engine = InferenceEngine.OpenCv, Precision = NetworkPrecision.Int8 }));

        var int8Path = Path.Combine(folder, ModelMetadata.Int8FileName);
        var bytes = File.ReadAllBytes(int8Path);
        bytes[^10] ^= 0x5a;
        File.WriteAllBytes(int8Path, bytes);
        var corrupt = Assert.Throws<InvalidDataException>(() => OnnxFaceClassifier.Load(folder));
        Assert.Contains(int8Path, corrupt.Message, StringComparison.Ordinal);
        Assert.Contains("checksum", corrupt.Message, StringComparison.Ordinal);
        using (var exact = OnnxFaceClassifier.Load(folder, new ClassifierOptions { Precision = NetworkPrecision.Float })) Assert.False(exact.IsInt8);
    }

    [Fact]
    public void Saving_keeps_the_int8_network_with_its_own_weights_and_drops_it_with_new_weights_or_in_a_new_folder()
    {
        using var dir = new TempDir();
        var folder = SavedPackage(dir);
        Int8Quantization.AddTo(folder, Faces(16, seed: 4), "16 synthetic faces");
        using (var model = EmotionModel.Load(folder))
        {
            model.UpdateMetadata(m => m with { Metrics = new Dictionary<string, double>(m.Metrics) { ["int8_privatetest_accuracy"] = 0.5 } });
            model.Save(folder, float16: true);
            Assert.NotNull(ModelPackage.ReadMetadata(folder).Int8);

            model.Save(dir.File("copy"), float16: true);
            Assert.Null(ModelPackage.ReadMetadata(dir.File("copy")).Int8);

            using (TorchSharp.torch.no_grad()) model.Network.parameters().First().add_(0.01f);
            model.Save(folder, float16: true);
        }
        var changed = ModelPackage.ReadMetadata(folder);
        Assert.Null(changed.Int8);
        Assert.DoesNotContain(changed.Metrics.Keys, k => k.StartsWith("int8_", StringComparison.Ordinal));
        using var classifier = OnnxFaceClassifier.Load(folder);
        Assert.False(classifier.IsInt8);
    }
}
