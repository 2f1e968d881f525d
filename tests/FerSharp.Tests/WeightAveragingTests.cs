using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Tests;

[Collection("torch")]
public class WeightAveragingTests
{
    private static EmotionModel Member(string name, long seed, params string[] splits) => new(
        new ModelMetadata
        {
            Name = name,
            Architecture = "fast-cnn",
            ClassNames = EmotionClasses.Fer2013,
            WeightsSha256 = $"sha-{name}",
            Epochs = (int)seed * 10,
            TrainingSeconds = seed * 100.5,
            Dataset = new DatasetFingerprint("faces.csv", 10, "x", new Dictionary<string, int>()) { Splits = splits },
        },
        FoldedNetworkTests.Randomized("fast-cnn", seed));

    [Fact]
    public void The_average_holds_the_mean_of_every_weight_and_remembers_its_members()
    {
        using var dir = new TempDir();
        using var a = Member("a", 1, "Training");
        using var b = Member("b", 2, "Training", "PublicTest");
        using var c = Member("c", 3, "Training");
        foreach (var (_, counter) in c.Network.state_dict().Where(p => !p.Value.is_floating_point()))
        {
            counter.fill_(7); // a counter is taken from the last member, never averaged
        }
        using (var averaged = WeightAveraging.Average([a, b, c], "abc"))
        {
            var sa = a.Network.state_dict();
            var sb = b.Network.state_dict();
            var sc = c.Network.state_dict();
            foreach (var (key, value) in averaged.Network.state_dict())
            {
                if (!value.is_floating_point())
                {
                    Assert.Equal(7L, value.item<long>()); // the last member's counter
                    continue;
                }
                using var expected = (sa[key] + sb[key] + sc[key]) / 3;
                Assert.True(value.allclose(expected, rtol: 1e-5, atol: 1e-7), $"{key} is not the mean of the members");
            }
            // b trained on PublicTest, so the average did too, and must not call PublicTest a test there.
            Assert.True(averaged.Metadata.TrainedOn(DataSplit.PublicTest));
            Assert.False(averaged.Metadata.TrainedOn(DataSplit.PrivateTest));
            averaged.Save(dir.Path);
        }
        using var loaded = EmotionModel.Load(dir.Path);
        Assert.Equal("abc", loaded.Metadata.Name);
        Assert.Equal(["a", "b", "c"], loaded.Metadata.AveragedFrom!.Select(m => m.Name));
        Assert.Equal("sha-b", loaded.Metadata.AveragedFrom![1].WeightsSha256);
        Assert.Empty(loaded.Metadata.Metrics); // the members' scores are not the average's
        Assert.Equal(60, loaded.Metadata.Epochs); // what it took to make all three, not the last one's 30
        Assert.Equal(603.0, loaded.Metadata.TrainingSeconds!.Value, 6);
        var card = ModelCard.Render(loaded.Metadata, 1000);
        Assert.Contains("The weights of `a`, `b`, `c` averaged into one network (`fer models average`).", card, StringComparison.Ordinal);
        Assert.Contains("60 epochs and 0.2 h of training on 2 cores across them", card, StringComparison.Ordinal);
        Assert.Contains("Epochs not recorded for every member", ModelCard.Render(loaded.Metadata with { Epochs = null }, 1000), StringComparison.Ordinal);
    }

    [Fact]
    public void Models_whose_weights_mean_different_things_are_refused()
    {
        using var a = Member("a", 1, "Training");
        using var seed = new EmotionModel(new ModelMetadata { Name = "s", Architecture = "seed-cnn", ClassNames = EmotionClasses.Fer2013 }, ModelRegistry.Create("seed-cnn", 7));
        using var ferPlus = new EmotionModel(new ModelMetadata { Name = "p", Architecture = "fast-cnn", ClassNames = EmotionClasses.FerPlus }, FoldedNetworkTests.Randomized("fast-cnn", 4, classes: 8));
        using var scaled = Member("n", 5, "Training");
        scaled.UpdateMetadata(m => m with { Normalization = new Normalization(0.5, 0.25) });

        Assert.Contains("at least two", Assert.Throws<ArgumentException>(() => WeightAveraging.Average([a], "x")).Message, StringComparison.Ordinal);
        Assert.Contains("architecture 'seed-cnn'", Assert.Throws<ArgumentException>(() => WeightAveraging.Average([a, seed], "x")).Message, StringComparison.Ordinal);
        Assert.Contains("classes", Assert.Throws<ArgumentException>(() => WeightAveraging.Average([a, ferPlus], "x")).Message, StringComparison.Ordinal);
        Assert.Contains("normalization", Assert.Throws<ArgumentException>(() => WeightAveraging.Average([a, scaled], "x")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Recomputed_batch_norm_statistics_are_those_of_the_faces()
    {
        using var scope = NewDisposeScope();
        using var a = Member("a", 1, "Training");
        using var b = Member("b", 2, "Training");
        using var averaged = WeightAveraging.Average([a, b], "ab");
        var faces = Synthetic.Patterns(perClass: 20); // 140 faces: four equal batches of 35
        var layers = WeightAveraging.RecomputeBatchNorm(averaged, faces, batchSize: 35);

        var network = averaged.Network.children().ToList();
        var firstNorm = (TorchSharp.Modules.BatchNorm)network[1];
        Assert.Equal(averaged.Network.modules().OfType<TorchSharp.Modules.BatchNorm>().Count(), layers);
        using (no_grad())
        {
            using var all = faces.ToTensor();
            var convolved = ((nn.Module<Tensor, Tensor>)network[0]).forward(averaged.Preprocess(all));
            var mean = convolved.mean([0, 2, 3]);
            var variance = convolved.var([0, 2, 3]);
            Assert.True(firstNorm.running_mean!.allclose(mean, rtol: 1e-4, atol: 1e-5), "running mean is not the mean over the faces");
            // The mean of four batch variances is close to, not equal to, the variance over all faces.
            Assert.True(firstNorm.running_var!.allclose(variance, rtol: 0.05, atol: 1e-5), "running variance is not the variance over the faces");
        }
        Assert.All(averaged.Network.modules(), m => Assert.False(m.training, $"{m.GetName()} left in training mode"));
        Assert.Equal(0.1, firstNorm.momentum);
        Assert.Contains("140 unaugmented faces (Training)", averaged.Metadata.BatchNormStatistics, StringComparison.Ordinal);
    }

    [Fact]
    public void Fer_models_average_writes_a_package_and_refuses_a_mixed_set()
    {
        using var dir = new TempDir();
        using (var a = Member("a", 1, "Training")) a.Save(dir.File("a"));
        using (var b = Member("b", 2, "Training")) b.Save(dir.File("b"));
        using (var s = new EmotionModel(new ModelMetadata { Name = "s", Architecture = "seed-cnn", ClassNames = EmotionClasses.Fer2013 }, ModelRegistry.Create("seed-cnn", 7)))
        {
            s.Save(dir.File("s"));
        }

        var ok = Cli.Run("models", "average", dir.File("a"), dir.File("b"), "--out", dir.File("ab"));
        Assert.True(ok.ExitCode == 0, ok.Stdout + ok.Stderr);
        using (var averaged = EmotionModel.Load(dir.File("ab")))
        {
            Assert.Equal(["a", "b"], averaged.Metadata.AveragedFrom!.Select(m => m.Name));
        }

        var mixed = Cli.Run("models", "average", dir.File("a"), dir.File("s"), "--out", dir.File("as"));
        Assert.NotEqual(0, mixed.ExitCode);
        Assert.Contains("architecture 'seed-cnn'", mixed.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(dir.File("as")), "a refused average left a folder behind");

        var missing = Cli.Run("models", "average", dir.File("a"), dir.File("nothing"), "--out", dir.File("an"));
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("nothing", missing.Stderr, StringComparison.Ordinal);
    }
}
