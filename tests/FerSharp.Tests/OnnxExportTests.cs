using FerSharp.Data;
using FerSharp.Models;

using Onnx;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Tests;

/// <summary>The ONNX export, and the OpenCV engine that runs it: same outputs as the network, or a clear refusal.</summary>
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
    [InlineData("resnet-small", 1)]
    [InlineData("resnet-small", 3)]
    [InlineData("mini-xception", 1)]
    [InlineData("mini-xception", 4)]
    public void The_OpenCV_engine_gives_the_networks_own_outputs(string architecture, int batch)
    {
        using var scope = NewDisposeScope();
        using var model = Untrained(architecture, seed: 3);
        using var faces = FoldedNetworkTests.RandomFaces(batch, seed: 7);
        using var input = model.Preprocess(faces);
        using var expected = model.Network.forward(input);

        model.Engine = InferenceEngine.OpenCv;
        Assert.Equal(InferenceEngine.OpenCv, model.ActiveEngine);
        using var actual = model.Forward(input);

        var (worst, magnitude) = LogitDifference(expected, actual, architecture);
        Assert.True(worst <= 1e-4f * magnitude + 1e-7f, $"{architecture}: OpenCV logits differ by {worst} (logits up to {magnitude})");
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
    [InlineData("fast-cnn")]
    [InlineData("vgg-wide")]
    public void Auto_times_both_engines_and_keeps_the_faster_and_both_agree_on_probabilities(string architecture)
    {
        using var scope = NewDisposeScope();
        using var model = Untrained(architecture, seed: 8, flip: true);
        using var faces = FoldedNetworkTests.RandomFaces(5, seed: 2);
        Assert.Equal(InferenceEngine.Auto, model.Engine);
        var timing = Assert.IsType<EngineTiming>(model.EngineTiming);
        Assert.True(timing.OpenCvMs > 0 && timing.TorchSharpMs > 0, timing.ToString());
        Assert.InRange(timing.Rounds, 5, 25);
        Assert.Equal(timing.OpenCvMs <= timing.TorchSharpMs ? InferenceEngine.OpenCv : InferenceEngine.TorchSharp, model.ActiveEngine);
        using var viaAuto = model.PredictProbabilities(faces);

        model.Engine = InferenceEngine.OpenCv;
        Assert.Equal(InferenceEngine.OpenCv, model.ActiveEngine);
        Assert.Null(model.EngineTiming); // chosen by hand: nothing timed
        using var viaOpenCv = model.PredictProbabilities(faces);
        model.Engine = InferenceEngine.TorchSharp;
        Assert.Equal(InferenceEngine.TorchSharp, model.ActiveEngine);
        Assert.Null(model.EngineTiming);
        using var viaTorch = model.PredictProbabilities(faces);
        Assert.True(viaOpenCv.allclose(viaTorch, rtol: 1e-4, atol: 1e-6), "the engines' flip-averaged probabilities differ");
        Assert.True(viaAuto.allclose(model.ActiveEngine == InferenceEngine.OpenCv ? viaOpenCv : viaTorch, rtol: 1e-4, atol: 1e-6));

        model.Engine = InferenceEngine.Auto; // back to Auto: timed afresh
        Assert.NotNull(model.EngineTiming);
    }

    [Fact]
    public void Engine_timing_keeps_the_call_with_the_lower_median_whichever_engine_it_is()
    {
        var slow = 0;
        var fast = 0;
        var timing = EngineTiming.Measure(() => { slow++; Thread.Sleep(3); }, () => fast++, TimeSpan.Zero, minRounds: 5, maxRounds: 9);
        Assert.Equal(InferenceEngine.TorchSharp, timing.Faster);
        Assert.Equal(5, timing.Rounds); // no budget beyond the minimum
        Assert.Equal(5 + EngineTiming.WarmupCalls, slow);
        Assert.Equal(5 + EngineTiming.WarmupCalls, fast);
        Assert.True(timing.OpenCvMs >= 3, timing.ToString());

        var other = EngineTiming.Measure(() => { }, () => Thread.Sleep(3), TimeSpan.FromSeconds(10), minRounds: 2, maxRounds: 4);
        Assert.Equal(InferenceEngine.OpenCv, other.Faster);
        Assert.Equal(4, other.Rounds); // the budget left, the cap stops it
        Assert.StartsWith("OpenCv 0.", other.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Byte_faces_on_OpenCV_get_what_libtorch_computes_end_to_end(bool flipAveraging)
    {
        using var scope = NewDisposeScope();
        using var model = Untrained("fast-cnn", seed: 9, flip: flipAveraging);
        using var faces = FoldedNetworkTests.RandomFaces(3, seed: 4);
        var bytes = faces.reshape(3, -1).data<byte>().ToArray();
        var list = Enumerable.Range(0, 3).Select(i => bytes.AsSpan(i * 2304, 2304).ToArray()).ToList();
        model.Engine = InferenceEngine.OpenCv;
        var rows = model.PredictProbabilities(list); // managed pre- and post-processing around OpenCV

        model.Engine = InferenceEngine.TorchSharp;
        using var expected = model.PredictProbabilities(faces);
        var want = expected.data<float>().ToArray();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(1f, rows[i].Sum(), 5);
            for (var c = 0; c < 7; c++) Assert.Equal(want[i * 7 + c], rows[i][c], 5);
        }
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
        var engine = Assert.Throws<NotSupportedException>(() => model.Engine = InferenceEngine.OpenCv);
        Assert.Contains("act", engine.Message);

        Assert.Equal(InferenceEngine.TorchSharp, model.ActiveEngine); // Auto falls back
        Assert.Null(model.EngineTiming);
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
        Assert.DoesNotContain(graph.Node, n => n.OpType == "BatchNormalization");
        Assert.Equal(graph.Node.Count, graph.Node.Select(n => n.Name).Distinct().Count());
    }

    [Fact]
    public void The_export_is_a_valid_ONNX_graph_with_folded_batch_norms_and_the_packages_settings()
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
        Assert.DoesNotContain("BatchNormalization", ops);
        Assert.DoesNotContain("Dropout", ops);
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
