using FerSharp.Data;
using FerSharp.Training;

using static TorchSharp.torch;

namespace FerSharp.Tests;

/// <summary>Photometric augmentation and starting a network from one trained on another class list.</summary>
[Collection("torch")]
public sealed class RobustTrainingTests
{
    [Fact]
    public void Photometric_options_parse_and_print_back()
    {
        var options = AugmentOptions.Parse("flip,photometric");
        Assert.True(options.HasPhotometric);
        Assert.Equal(AugmentOptions.Photometric.Gamma, options.Gamma);
        Assert.Equal(options, AugmentOptions.Parse(options.ToString()));
        Assert.Equal(0.3, AugmentOptions.Parse("jpeg=0.3").Jpeg);
        var error = Assert.Throws<ArgumentException>(() => AugmentOptions.Parse("sharpen=1"));
        Assert.Contains("gamma", error.Message);
    }

    [Theory]
    [InlineData("brightness=0.3")]
    [InlineData("contrast=0.5")]
    [InlineData("gamma=0.5")]
    [InlineData("blur=1")]
    [InlineData("noise=0.05")]
    [InlineData("jpeg=1")]
    public void Each_photometric_change_keeps_shape_and_range_changes_the_faces_and_is_reproducible(string augment)
    {
        using var scope = NewDisposeScope();
        var options = AugmentOptions.Parse(augment);
        var faces = FoldedNetworkTests.RandomFaces(8, seed: 2).to(ScalarType.Float32).div(255);
        // Smooth faces, so that blur and JPEG have something other than noise to keep.
        faces = nn.functional.avg_pool2d(faces, 5, 1, 2);
        using var first = new Generator(5);
        using var second = new Generator(5);
        var a = Augmentation.Apply(faces, options, first);
        var b = Augmentation.Apply(faces, options, second);
        Assert.Equal(faces.shape, a.shape);
        Assert.True(a.min().item<float>() >= 0 && a.max().item<float>() <= 1);
        Assert.True(a.sub(faces).abs().mean().item<float>() > 1e-3, $"{augment} left the faces as they were");
        Assert.True(a.allclose(b, 0, 0), $"{augment}: the same generator seed gave different faces");
    }

    [Fact]
    public void A_seven_class_network_starts_an_eight_class_one_with_the_shared_classes_rows()
    {
        using var scope = NewDisposeScope();
        using var seven = FoldedNetworkTests.Randomized("fast-cnn", 1, classes: 7);
        using var eight = FoldedNetworkTests.Randomized("fast-cnn", 2, classes: 8);
        var shared = ClassHeadTransfer.LoadAcrossClasses(eight, seven, EmotionClasses.Fer2013, EmotionClasses.FerPlus);
        Assert.Equal(7, shared.Count);
        Assert.DoesNotContain("contempt", shared);
        var from = seven.state_dict();
        var to = eight.state_dict();
        var head = to.Single(pair => pair.Value.dim() == 2 && pair.Value.shape[0] == 8).Key;
        foreach (var cls in shared)
        {
            var row = to[head][EmotionClasses.FerPlus.ToList().IndexOf(cls)];
            Assert.True(row.allclose(from[head][EmotionClasses.Fer2013.ToList().IndexOf(cls)], 0, 0), $"row of {cls}");
        }
        var resized = to.Where(pair => !pair.Value.shape.SequenceEqual(from[pair.Key].shape)).Select(pair => pair.Key).ToList();
        Assert.Equal(2, resized.Count); // the output layer's weight and bias
        foreach (var (name, weight) in to.Where(pair => !resized.Contains(pair.Key)))
        {
            Assert.True(weight.allclose(from[name], 0, 0), name);
        }
    }

    [Fact]
    public void A_network_of_another_shape_is_refused_by_weight_name()
    {
        using var fast = FoldedNetworkTests.Randomized("fast-cnn", 1, classes: 7);
        using var vgg = FoldedNetworkTests.Randomized("vgg-bn", 1, classes: 8);
        var error = Assert.Throws<ArgumentException>(() => ClassHeadTransfer.LoadAcrossClasses(vgg, fast, EmotionClasses.Fer2013, EmotionClasses.FerPlus));
        Assert.Contains("--init-from", error.Message);
    }
}
