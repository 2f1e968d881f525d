using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;
using FerSharp.Training;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Tests;

[Collection("torch")]
public class ChannelPruningTests
{
    private static EmotionModel FastCnn(long seed) => new(
        new ModelMetadata { Name = "wide", Architecture = "fast-cnn", ClassNames = EmotionClasses.Fer2013 },
        FoldedNetworkTests.Randomized("fast-cnn", seed));

    [Fact]
    public void Channels_that_add_nothing_are_the_ones_dropped_and_the_narrow_network_answers_as_the_wide_one()
    {
        using var wide = FastCnn(5);
        var weights = wide.Network.state_dict();
        var random = new Random(3);
        using (no_grad())
        {
            // fast-cnn-slim keeps 96 of stage 3's 128 channels and 192 of stage 4's 256: switch off the others
            // (scale and shift 0, so they output 0 after the ReLU and pooling, whatever their input).
            foreach (var (stage, off) in new[] { (3, 32), (4, 64) })
            {
                foreach (var channel in Enumerable.Range(0, (int)weights[$"b{stage}_bn.weight"].shape[0]).OrderBy(_ => random.Next()).Take(off))
                {
                    weights[$"b{stage}_bn.weight"][channel] = 0f;
                    weights[$"b{stage}_bn.bias"][channel] = 0f;
                }
            }
        }
        using var narrow = ChannelPruning.Prune(wide, "fast-cnn-slim", "narrow");
        Assert.Equal("fast-cnn-slim", narrow.Metadata.Architecture);
        Assert.Equal(narrow.Network.parameters().Sum(p => p.numel()), narrow.Metadata.Parameters);
        Assert.True(narrow.Metadata.Parameters < 0.7 * wide.Network.parameters().Sum(p => p.numel()));
        AssertSameAnswers(wide, narrow, seed: 11);
    }

    /// <summary>Both networks give the same logits on a few random inputs.</summary>
    private static void AssertSameAnswers(EmotionModel wide, EmotionModel narrow, ulong seed)
    {
        wide.Network.eval();
        narrow.Network.eval();
        using var scope = NewDisposeScope();
        using var generator = new Generator(seed);
        var faces = randn([4, 1, 48, 48], generator: generator);
        using (no_grad())
        {
            var expected = wide.Network.forward(faces);
            var actual = narrow.Network.forward(faces);
            Assert.True(actual.allclose(expected, rtol: 1e-4, atol: 1e-5), $"largest difference {(actual - expected).abs().max().item<float>()}");
        }
    }

    [Fact]
    public void A_vgg_network_with_two_convolutions_a_stage_narrows_into_half_its_width()
    {
        using var wide = new EmotionModel(
            new ModelMetadata { Name = "wide", Architecture = "vgg-wide", ClassNames = EmotionClasses.Fer2013 },
            FoldedNetworkTests.Randomized("vgg-wide", 8));
        var weights = wide.Network.state_dict();
        var random = new Random(4);
        using (no_grad())
        {
            // vgg-bn keeps half of every convolution's channels: switch off the other half of each.
            foreach (var norm in weights.Keys.Where(k => k.StartsWith('b') && k.EndsWith("weight", StringComparison.Ordinal) && k.Contains("_bn", StringComparison.Ordinal)).ToList())
            {
                var width = (int)weights[norm].shape[0];
                foreach (var channel in Enumerable.Range(0, width).OrderBy(_ => random.Next()).Take(width / 2))
                {
                    weights[norm][channel] = 0f;
                    weights[norm.Replace("weight", "bias", StringComparison.Ordinal)][channel] = 0f;
                }
            }
        }
        using var narrow = ChannelPruning.Prune(wide, "vgg-bn", "narrow");
        using (var reference = ModelRegistry.Create("vgg-bn", 7))
        {
            Assert.Equal(reference.parameters().Sum(p => p.numel()), narrow.Metadata.Parameters);
        }
        AssertSameAnswers(wide, narrow, seed: 12);
    }

    [Fact]
    public void Fer_models_prune_writes_a_narrow_package_and_refuses_an_unknown_or_wider_architecture()
    {
        using var dir = new TempDir();
        using (var wide = FastCnn(7))
        {
            wide.Save(dir.File("wide"));
        }
        var ok = Cli.Run("models", "prune", dir.File("wide"), "--arch", "fast-cnn-slim", "--out", dir.File("narrow"));
        Assert.True(ok.ExitCode == 0, ok.Stdout + ok.Stderr);
        using (var narrow = EmotionModel.Load(dir.File("narrow")))
        {
            Assert.Equal(("fast-cnn-slim", "narrow"), (narrow.Metadata.Architecture, narrow.Metadata.Name));
        }

        var unknown = Cli.Run("models", "prune", dir.File("wide"), "--arch", "fast-cnn-tiny", "--out", dir.File("tiny"));
        Assert.NotEqual(0, unknown.ExitCode);
        Assert.Contains("--arch: unknown architecture 'fast-cnn-tiny'", unknown.Stderr, StringComparison.Ordinal);

        var wider = Cli.Run("models", "prune", dir.File("narrow"), "--arch", "fast-cnn", "--out", dir.File("back"));
        Assert.NotEqual(0, wider.ExitCode);
        Assert.Contains("not a narrowing", wider.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.File("back")), "a refused prune left a folder behind");
    }

    [Fact]
    public void The_card_of_a_fine_tuned_narrow_package_names_the_run_it_started_from_and_its_history()
    {
        var metadata = new ModelMetadata
        {
            Name = "slim",
            Architecture = "fast-cnn-slim",
            ClassNames = EmotionClasses.Fer2013,
            Epochs = 14,
            Training = new TrainOptions { Architecture = "fast-cnn-slim", Epochs = 14, InitFrom = "runs/slim-start" }.ToJson(),
            History = "Pruned from `fer2013-realtime` (`fer models prune`).",
        };
        var card = ModelCard.Render(metadata, 1000);
        Assert.Contains("--init-from runs/slim-start", card, StringComparison.Ordinal);
        Assert.Contains("14 epochs; started from `runs/slim-start`; shipped", card, StringComparison.Ordinal);
        Assert.Contains("Pruned from `fer2013-realtime` (`fer models prune`).", card, StringComparison.Ordinal);
        var shipped = ModelCard.Render(metadata with { Training = new TrainOptions { Architecture = "fast-cnn", InitFrom = "models/fer2013-realtime" }.ToJson(), History = null }, 1000);
        Assert.Contains("started from the `models/fer2013-realtime` of its day (git history)", shipped, StringComparison.Ordinal);
        Assert.DoesNotContain("Pruned", shipped, StringComparison.Ordinal);
    }

    [Fact]
    public void A_target_that_is_not_a_narrowing_of_the_same_layout_is_refused_by_name()
    {
        using var wide = FastCnn(6);
        var error = Assert.Throws<ArgumentException>(() => ChannelPruning.Prune(wide, "vgg-bn", "x"));
        Assert.Contains("vgg-bn", error.Message);
    }
}
