using FerSharp.Data;
using FerSharp.Models;

using Onnx;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Tests;

/// <summary>The ONNX export and the engines that run it without libtorch: same outputs as the network, or a clear refusal.</summary>
[Collection("torch")]
public class OnnxExportTests
{
    /// <summary>A package around a network with random weights and batch-norm statistics (nothing to read from disk).</summary>
    internal static EmotionModel Untrained(string architecture, long seed, bool flip = false) =>
        new(new ModelMetadata
        {
            Name = "t",
            Architecture = architecture,
            ClassNames = EmotionClasses.Fer2013,
            Normalization = new Normalization { Mean = 0.5, Std = 0.25 },
            FlipAveraging = flip,
        }, FoldedNetworkTests.Randomized(architecture, seed));

    [Theory]
    [InlineData("seed-cnn", 1)]
    [InlineData("seed-cnn", 5)]
    [InlineData("vgg-bn", 1)]
    [InlineData("vgg-wide", 2)]
    [InlineData("fast-cnn", 1)]
    [InlineData("fast-cnn", 6)]
    [InlineData("fast-cnn-slim", 1)]
    [InlineData("resnet-small", 1)]
    [InlineData("resnet-small", 3)]
    [InlineData("mini-xception", 1)]
    [InlineData("mini-xception", 4)]
    public void The_ONNX_engines_give_the_networks_own_outputs(string architecture, int batch)
    {
        using var scope = NewDisposeScope();
        using var model = Untrained(architecture, seed: 3);
        using var faces = FoldedNetworkTests.RandomFaces(batch, seed: 7);
        using var input = model.Preprocess(faces);
        using var expected = model.Network.forward(input);
        var pixels = faces.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        var onnx = OnnxExport.Export(model);

        foreach (var engine in new[] { InferenceEngine.OnnxRuntime, InferenceEngine.OpenCv })
        {
            using var classifier = OnnxFaceClassifier.FromGraph(model.Metadata, onnx, new ClassifierOptions { Engine = engine });
            var logits = classifier.Forward(pixels, batch, out var classes);
            using var actual = tensor(logits, [batch, classes]);
            var (worst, magnitude) = LogitDifference(expected, actual, architecture);
            Assert.True(worst <= 1e-4f * magnitude + 1e-6f, $"{architecture} on {engine}: logits differ by {worst} (logits up to {magnitude})");
        }
    }

    /// <summary>The largest difference between two engines' logits, and the largest logit, after checking there is something to compare.</summary>
    internal static (float Worst, float Magnitude) LogitDifference(Tensor expected, Tensor actual, string architecture)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var difference = (expected - actual).abs();
        var worst = difference.max().item<float>();
        var magnitude = expected.abs().max().item<float>();
        Assert.True(magnitude > 1e-3f, $"{architecture}: the random network's logits are all near zero ({magnitude}), nothing to compare");
        return (worst, magnitude);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Byte_faces_through_the_package_graph_get_what_libtorch_computes_end_to_end(bool flipAveraging)
    {
        using var scope = NewDisposeScope();
        using var model = Untrained("fast-cnn", seed: 9, flip: flipAveraging);
        using var faces = FoldedNetworkTests.RandomFaces(3, seed: 4);
        var bytes = faces.reshape(3, -1).data<byte>().ToArray();
        var list = Enumerable.Range(0, 3).Select(i => bytes.AsSpan(i * 2304, 2304).ToArray()).ToList();
        using var expected = model.PredictProbabilities(faces);
        var want = expected.data<float>().ToArray();
        foreach (var engine in new[] { InferenceEngine.OnnxRuntime, InferenceEngine.OpenCv })
        {
            using var classifier = OnnxFaceClassifier.FromGraph(model.Metadata, OnnxExport.Export(model), new ClassifierOptions { Engine = engine });
            var rows = classifier.PredictProbabilities(list); // mirrors and softmax in C#, normalization in the graph
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(1f, rows[i].Sum(), 5);
                for (var c = 0; c < 7; c++) Assert.Equal(want[i * 7 + c], rows[i][c], 5);
            }
        }
    }

    [Theory]
    [InlineData("vgg-bn")]
    [InlineData("mini-xception")]
    public void A_float16_package_keeps_its_weights_to_the_bit_and_both_libraries_agree(string architecture)
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        using (var model = Untrained(architecture, seed: 12, flip: true))
        {
            model.Save(dir.File("p"), float16: true);
        }
        Assert.True(File.Exists(dir.File("p/model.onnx")));
        Assert.False(File.Exists(dir.File("p/weights.bin")));
        using var reloaded = EmotionModel.Load(dir.File("p"));
        Assert.Equal(ModelMetadata.CurrentFormatVersion, reloaded.Metadata.FormatVersion);
        // Stored in float16: every weight read back is a float16 value, and saving again writes the same bytes.
        foreach (var (name, weight) in reloaded.Network.state_dict().Where(p => p.Value.dtype == ScalarType.Float32))
        {
            using var rounded = weight.to(ScalarType.Float16).to(ScalarType.Float32);
            Assert.True(rounded.eq(weight).all().item<bool>(), $"{name} is not float16-exact");
        }
        reloaded.Save(dir.File("again"), float16: true);
        Assert.Equal(File.ReadAllBytes(dir.File("p/model.onnx")), File.ReadAllBytes(dir.File("again/model.onnx")));

        using var faces = FoldedNetworkTests.RandomFaces(4, seed: 8);
        using var expected = reloaded.PredictProbabilities(faces);
        var want = expected.data<float>().ToArray();
        var bytes = faces.reshape(4, -1).data<byte>().ToArray();
        var list = Enumerable.Range(0, 4).Select(i => bytes.AsSpan(i * 2304, 2304).ToArray()).ToList();
        foreach (var engine in new[] { InferenceEngine.OnnxRuntime, InferenceEngine.OpenCv })
        {
            using var lean = OnnxFaceClassifier.Load(dir.File("p"), new ClassifierOptions { Engine = engine });
            var rows = lean.PredictProbabilities(list);
            for (var i = 0; i < 4; i++)
            {
                for (var c = 0; c < 7; c++) Assert.Equal(want[i * 7 + c], rows[i][c], 1e-4);
            }
        }
    }

    [Fact]
    public void A_format_2_package_loads_on_libtorch_and_the_lean_library_names_the_upgrade()
    {
        using var scope = NewDisposeScope();
        using var dir = new TempDir();
        using var model = Untrained("fast-cnn", seed: 2);
        var folder = Directory.CreateDirectory(dir.File("old")).FullName;
        using (var stream = new MemoryStream())
        {
            model.Network.save(stream);
            File.WriteAllBytes(Path.Combine(folder, "weights.bin"), stream.ToArray());
        }
        var legacy = model.Metadata with { FormatVersion = 2, WeightsFile = "weights.bin", WeightsDtype = "float32", WeightsSha256 = null };
        File.WriteAllText(Path.Combine(folder, "model.json"), System.Text.Json.JsonSerializer.Serialize(legacy, ModelMetadata.JsonOptions));

        using var loaded = EmotionModel.Load(folder);
        using var faces = FoldedNetworkTests.RandomFaces(2, seed: 1);
        using var a = model.PredictProbabilities(faces);
        using var b = loaded.PredictProbabilities(faces);
        Assert.True(a.allclose(b, rtol: 0, atol: 0));
        var refused = Assert.Throws<InvalidDataException>(() => OnnxFaceClassifier.Load(folder));
        Assert.Contains("fer models upgrade", refused.Message);
    }

    [Fact]
    public void A_network_with_a_layer_the_export_cannot_write_is_refused_by_name_and_runs_on_TorchSharp()
    {
        using var scope = NewDisposeScope();
        var network = nn.Sequential(
            ("conv", nn.Conv2d(1, 4, 3, padding: 1)),
            ("act", nn.LeakyReLU(0.1)),
            ("pool", nn.AdaptiveAvgPool2d(1)),
            ("flatten", nn.Flatten()),
            ("fc", nn.Linear(4, 7)));
        using var model = new EmotionModel(new ModelMetadata
        {
            Name = "custom",
            Architecture = "custom",
            ClassNames = EmotionClasses.Fer2013,
            Normalization = new Normalization { Mean = 0.5, Std = 0.25 },
        }, network);
        Assert.Equal("act (LeakyReLU)", OnnxExport.FindUnsupportedLayer(model.Network));
        var refused = Assert.Throws<NotSupportedException>(() => OnnxExport.Export(model));
        Assert.Contains("act (LeakyReLU)", refused.Message);
        Assert.Throws<NotSupportedException>(() => model.Engine = InferenceEngine.OpenCv);
        Assert.Equal(InferenceEngine.TorchSharp, model.Engine);
        using var faces = FoldedNetworkTests.RandomFaces(2, seed: 1);
        using var probabilities = model.PredictProbabilities(faces);
        Assert.Equal([2L, 7L], probabilities.shape);
    }

    [Theory]
    [InlineData("resnet-small", 6, true)]
    [InlineData("mini-xception", 4, false)]
    public void Residual_blocks_fork_from_their_input_and_join_with_an_Add(string architecture, int blocks, bool reluAfterSum)
    {
        using var scope = NewDisposeScope();
        using var model = Untrained(architecture, seed: 6);
        var graph = ModelProto.Parser.ParseFrom(OnnxExport.Export(model)).Graph;
        var adds = graph.Node.Where(n => n.OpType == "Add").ToList();
        Assert.Equal(blocks, adds.Count);
        var producers = graph.Node.ToDictionary(n => n.Output.Single());
        foreach (var add in adds)
        {
            // The two inputs come from different paths that start at the same tensor: the block's input.
            Assert.Equal(2, add.Input.Count);
            Assert.NotEqual(add.Input[0], add.Input[1]);
            Assert.Contains(".branch.", producers[add.Input[0]].Name);
            var consumers = graph.Node.Where(n => n.Input.Contains(add.Output[0])).ToList();
            Assert.NotEmpty(consumers);
            Assert.Equal(reluAfterSum, consumers is [{ OpType: "Relu" }]);
        }
        Assert.Equal(graph.Node.Count, graph.Node.Select(n => n.Name).Distinct().Count());
    }

    [Fact]
    public void The_export_is_a_valid_ONNX_graph_with_the_trained_weights_and_the_packages_settings()
    {
        using var scope = NewDisposeScope();
        using var model = Untrained("vgg-bn", seed: 5, flip: true);
        var graph = ModelProto.Parser.ParseFrom(OnnxExport.Export(model));

        Assert.Equal(OnnxExport.Opset, graph.OpsetImport.Single().Version);
        Assert.Equal(OnnxExport.InputName, graph.Graph.Input.Single().Name);
        Assert.Equal(OnnxExport.OutputName, graph.Graph.Output.Single().Name);
        var inputDims = graph.Graph.Input[0].Type.TensorType.Shape.Dim;
        Assert.Equal("N", inputDims[0].DimParam);
        Assert.Equal([1L, 48, 48], inputDims.Skip(1).Select(d => d.DimValue));
        Assert.Equal(7, graph.Graph.Output[0].Type.TensorType.Shape.Dim[1].DimValue);
        var ops = graph.Graph.Node.Select(n => n.OpType).ToList();
        Assert.Equal(8, ops.Count(o => o == "Conv"));
        Assert.Equal(2, ops.Count(o => o == "Gemm"));
        Assert.Equal(9, ops.Count(o => o == "BatchNormalization")); // folded by the runtime at load, stored as trained
        Assert.DoesNotContain("Dropout", ops);
        var weights = graph.Graph.Initializer.Select(t => t.Name).ToHashSet();
        Assert.All(model.Network.state_dict().Keys.Where(k => !k.EndsWith("num_batches_tracked", StringComparison.Ordinal)), k => Assert.Contains(k, weights));
        var properties = graph.MetadataProps.ToDictionary(p => p.Key, p => p.Value);
        Assert.Equal("0.25", properties["fersharp.normalization_std"]);
        Assert.Equal("true", properties["fersharp.flip_averaging"]);
        Assert.Contains("\"surprise\"", properties["fersharp.class_names"]);
    }

    [Fact]
    public void Fer_models_export_writes_the_graph_and_names_a_missing_package()
    {
        using var dir = new TempDir();
        using (var model = Untrained("fast-cnn", seed: 1))
        {
            model.Save(dir.File("fast"));
        }
        var onnx = dir.File("fast.onnx");
        var run = Cli.Run("models", "export", dir.File("fast"), onnx);
        Assert.True(run.ExitCode == 0, run.Stderr + run.Stdout);
        Assert.Contains("'faces'", run.Stdout);
        var graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(onnx));
        Assert.Equal(4, graph.Graph.Node.Count(n => n.OpType == "Conv"));

        using (var model = Untrained("mini-xception", seed: 1))
        {
            model.Save(dir.File("xception"));
        }
        var residual = Cli.Run("models", "export", dir.File("xception"), dir.File("xception.onnx"));
        Assert.True(residual.ExitCode == 0, residual.Stderr + residual.Stdout);
        Assert.Equal(4, ModelProto.Parser.ParseFrom(File.ReadAllBytes(dir.File("xception.onnx"))).Graph.Node.Count(n => n.OpType == "Add"));

        var missing = Cli.Run("models", "export", dir.File("nothing-here"), dir.File("x.onnx"));
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("nothing-here", missing.Stderr);
    }
}
