using System.Globalization;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Inference;
using FerSharp.Models;

namespace FerSharp.Tests;

/// <summary>The models in <c>models/</c>: their recorded test accuracy and the model card must match a fresh evaluation.</summary>
public class ShippedModelTests
{
    private static IEnumerable<string> ShippedPackages()
    {
        var dir = ModelCatalog.ModelsDirectory() ?? throw new DirectoryNotFoundException("models/ not found from the test's location");
        return Directory.GetDirectories(dir).Where(d => File.Exists(Path.Combine(d, "model.json"))).Order();
    }

    [Fact]
    public void Every_shipped_model_loads_is_small_and_has_a_model_card_entry()
    {
        var packages = ShippedPackages().ToList();
        Assert.NotEmpty(packages);
        var card = File.ReadAllText(Path.Combine(ModelCatalog.ModelsDirectory()!, "README.md"));
        foreach (var path in packages)
        {
            using var model = EmotionModel.Load(path);
            var bytes = Directory.GetFiles(path).Sum(f => new FileInfo(f).Length);
            Assert.True(bytes <= 30_000_000, $"{path} is {bytes / 1e6:F1} MB; shipped models must stay within 30 MB");
            Assert.Contains($"`{model.Metadata.Name}`", card, StringComparison.Ordinal);
        }
    }

    [SharedDataFact]
    public void Recorded_test_accuracy_and_the_model_card_equal_a_fresh_evaluation()
    {
        var data = Fer2013Dataset.Load(Fer2013Dataset.FindSharedData()!, new DatasetLoadOptions { Splits = [DataSplit.PublicTest, DataSplit.PrivateTest] });
        var card = File.ReadAllText(Path.Combine(ModelCatalog.ModelsDirectory()!, "README.md"));
        var checkedAny = false;
        foreach (var path in ShippedPackages())
        {
            using var model = EmotionModel.Load(path);
            if (!model.ClassNames.SequenceEqual(EmotionClasses.Fer2013)) continue;
            var key = TestSetMetrics.Key(DataSplit.PrivateTest, TtaMode.None);
            Assert.True(model.Metadata.Metrics.TryGetValue(key, out var recorded), $"{path}/model.json has no {key}; ship it with 'fer models ship'");
            var fresh = Evaluator.Evaluate(model, data.Subset(DataSplit.PrivateTest), new EvaluationOptions(), "PrivateTest").Metrics.Accuracy;
            Assert.Equal(recorded, fresh, 6);
            var flipKey = TestSetMetrics.Key(DataSplit.PrivateTest, TtaMode.Flip);
            var freshFlip = Evaluator.Evaluate(model, data.Subset(DataSplit.PrivateTest), new EvaluationOptions { Tta = TtaMode.Flip, CompareWithoutTta = false }, "PrivateTest").Metrics.Accuracy;
            Assert.Equal(model.Metadata.Metrics[flipKey], freshFlip, 6);
            // The card quotes the numbers as percentages with two decimals.
            Assert.Contains((fresh * 100).ToString("F2", CultureInfo.InvariantCulture) + "%", card, StringComparison.Ordinal);
            Assert.Contains((freshFlip * 100).ToString("F2", CultureInfo.InvariantCulture) + "%", card, StringComparison.Ordinal);
            checkedAny = true;
        }
        Assert.True(checkedAny, "no shipped FER2013 model to check");
    }
}
