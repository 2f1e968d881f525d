using FerSharp.Data;
using FerSharp.Models;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Tests;

/// <summary>
/// The bfloat16 engine: close to the float32 network's outputs (bfloat16 keeps 8 bits of mantissa), on a copy
/// that leaves the saved float32 weights as they were, or a clear refusal.
/// </summary>
[Collection("torch")]
public class BFloat16EngineTests
{
    [Theory]
    [InlineData("seed-cnn", 1)]
    [InlineData("vgg-bn", 3)]
    [InlineData("vgg-wide", 2)]
    [InlineData("fast-cnn", 4)]
    [InlineData("resnet-small", 2)]
    [InlineData("mini-xception", 3)]
    public void The_bfloat16_engine_gives_the_float32_logits_to_bfloat16_precision(string architecture, int batch)
    {
        using var scope = NewDisposeScope();
        using var model = OnnxExportTests.Untrained(architecture, seed: 5);
        using var faces = FoldedNetworkTests.RandomFaces(batch, seed: 11);
        using var input = model.Preprocess(faces);
        using var expected = model.Network.forward(input);

        model.Engine = InferenceEngine.TorchSharpBFloat16;
        Assert.Equal(InferenceEngine.TorchSharpBFloat16, model.Engine);
        using var actual = model.Forward(input);

        Assert.Equal(ScalarType.Float32, actual.dtype);
        var (worst, magnitude) = OnnxExportTests.LogitDifference(expected, actual, architecture);
        // Each layer rounds to 8 bits of mantissa (relative 0.4 %); a few layers deep that stays within some percent.
        Assert.True(worst <= 0.05f * magnitude, $"{architecture}: bfloat16 logits differ by {worst} (logits up to {magnitude})");
        Assert.True(worst > 0, $"{architecture}: bfloat16 logits equal float32's to the bit: the engine did not run in bfloat16");
    }

    [Fact]
    public void The_float32_network_is_left_as_it_was_and_the_other_engines_give_the_same_answers_after()
    {
        using var scope = NewDisposeScope();
        using var model = OnnxExportTests.Untrained("vgg-bn", seed: 6, flip: true);
        using var faces = FoldedNetworkTests.RandomFaces(4, seed: 3);
        model.Engine = InferenceEngine.TorchSharp;
        using var before = model.PredictProbabilities(faces);

        model.Engine = InferenceEngine.TorchSharpBFloat16;
        using var reduced = model.PredictProbabilities(faces);
        var bytes = faces.reshape(4, -1).data<byte>().ToArray();
        var rows = model.PredictProbabilities(Enumerable.Range(0, 4).Select(i => bytes.AsSpan(i * 2304, 2304).ToArray()).ToList());

        Assert.All(model.Network.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
        Assert.True(reduced.allclose(before, rtol: 0, atol: 0.02), "flip-averaged bfloat16 probabilities are not within 0.02 of float32's");
        var want = reduced.data<float>().ToArray();
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(1f, rows[i].Sum(), 3);
            for (var c = 0; c < 7; c++) Assert.Equal(want[i * 7 + c], rows[i][c], 5); // byte faces take the same bfloat16 path
        }

        model.Engine = InferenceEngine.TorchSharp;
        using var after = model.PredictProbabilities(faces);
        Assert.True(after.allclose(before, rtol: 0, atol: 0), "float32 answers changed after the bfloat16 engine ran");
    }

    [Fact]
    public void A_network_outside_the_registry_is_refused_by_name_and_keeps_its_engine()
    {
        using var scope = NewDisposeScope();
        var network = nn.Sequential(("conv", nn.Conv2d(1, 4, 3, padding: 1)), ("pool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(4, 7)));
        using var model = new EmotionModel(new ModelMetadata
        {
            Name = "custom",
            Architecture = "custom-net",
            ClassNames = EmotionClasses.Fer2013,
            Normalization = new Normalization { Mean = 0.5, Std = 0.25 },
        }, network);
        var refused = Assert.Throws<NotSupportedException>(() => model.Engine = InferenceEngine.TorchSharpBFloat16);
        Assert.Contains("custom-net", refused.Message);
        Assert.Equal(InferenceEngine.TorchSharp, model.Engine);
    }
}
