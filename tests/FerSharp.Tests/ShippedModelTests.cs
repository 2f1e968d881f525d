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
    public void Every_shipped_model_loads_is_small_and_has_a_short_model_card_and_an_index_entry()
    {
        var packages = ShippedPackages().ToList();
        Assert.NotEmpty(packages);
        var index = File.ReadAllText(Path.Combine(ModelCatalog.ModelsDirectory()!, "README.md"));
        foreach (var path in packages)
        {
            using var model = EmotionModel.Load(path);
            var bytes = Directory.GetFiles(path).Sum(f => new FileInfo(f).Length);
            Assert.True(bytes <= 30_000_000, $"{path} is {bytes / 1e6:F1} MB; shipped models must stay within 30 MB");
            Assert.Contains($"`{model.Metadata.Name}`", index, StringComparison.Ordinal);
            var card = Path.Combine(path, ModelCard.FileName);
            Assert.True(File.Exists(card), $"{path} has no {ModelCard.FileName}; write it with 'fer models score {path}'");
            Assert.True(File.ReadAllLines(card).Length <= 60, $"{card} is over 60 lines");
        }
    }

    [Fact]
    public void Every_shipped_package_gives_the_same_probabilities_without_libtorch_as_on_it()
    {
        // Faces with structure (gradients, a blob, noise) at several contrasts, each package's flip averaging included.
        var random = new Random(17);
        var faces = Enumerable.Range(0, 6).Select(k =>
        {
            var face = new byte[FaceDataset.PixelsPerImage];
            for (var p = 0; p < face.Length; p++)
            {
                var (y, x) = (p / 48, p % 48);
                var blob = Math.Exp(-((x - 24 + k) * (x - 24 + k) + (y - 28) * (y - 28)) / 90.0);
                face[p] = (byte)Math.Clamp(60 + 20 * k + 70 * blob + 30 * Math.Sin(x / 4.0 + k) + random.Next(-15, 16), 0, 255);
            }
            return face;
        }).ToList();
        foreach (var path in ShippedPackages())
        {
            // The float network: a package's int8 copy answers differently by design (its own test below).
            using var lean = OnnxFaceClassifier.Load(path, new ClassifierOptions { Precision = NetworkPrecision.Float });
            using var onLibtorch = TorchFaceClassifier.Load(path);
            foreach (var tta in new[] { TtaMode.None, TtaMode.Crops })
            {
                var expected = onLibtorch.PredictProbabilities(faces, tta);
                var actual = lean.PredictProbabilities(faces, tta);
                for (var i = 0; i < faces.Count; i++)
                {
                    for (var c = 0; c < expected[i].Length; c++)
                    {
                        Assert.True(Math.Abs(expected[i][c] - actual[i][c]) <= 1e-4,
                            $"{Path.GetFileName(path)} ({tta}), face {i}, {lean.ClassNames[c]}: libtorch {expected[i][c]}, ONNX Runtime {actual[i][c]}");
                    }
                }
            }
        }
    }

    /// <summary>
    /// Every figure is on the original FER2013 pixels (the shared <c>fer2013.csv.gz</c>) or, for FER+ packages,
    /// on the FER+ test set under the majority rule; the package records it and its card quotes it.
    /// </summary>
    [SharedDataFact]
    public void Recorded_test_accuracy_and_the_model_card_equal_a_fresh_evaluation()
    {
        var csv = Fer2013Dataset.FindSharedData()!;
        var data = Fer2013Dataset.Load(csv, new DatasetLoadOptions { Splits = [DataSplit.PrivateTest] });
        var votes = Fer2013Dataset.FindSharedData("fer2013new.csv");
        FaceDataset? ferPlus = null;
        var checkedAny = false;
        foreach (var path in ShippedPackages())
        {
            using var model = EmotionModel.Load(path);
            var card = File.ReadAllText(Path.Combine(path, ModelCard.FileName));
            string prefix;
            FaceDataset faces;
            if (model.ClassNames.SequenceEqual(EmotionClasses.Fer2013))
            {
                (prefix, faces) = ("", data);
            }
            else if (model.ClassNames.SequenceEqual(EmotionClasses.FerPlus) && votes is not null)
            {
                ferPlus ??= Fer2013Dataset.Load(csv, new DatasetLoadOptions { FerPlusLabels = votes, FerPlusMode = FerPlusLabelMode.Majority, Splits = [DataSplit.PrivateTest] });
                (prefix, faces) = ($"{TestSetMetrics.FerPlusPrefix}majority_", ferPlus);
            }
            else
            {
                continue;
            }
            foreach (var tta in TestSetMetrics.ShippedTta)
            {
                var key = prefix + TestSetMetrics.Key(DataSplit.PrivateTest, tta);
                Assert.True(model.Metadata.Metrics.TryGetValue(key, out var recorded), $"{path}/model.json has no {key}; score it with 'fer models score {path}'");
                var fresh = Evaluator.Evaluate(model, faces, new EvaluationOptions { Tta = tta, CompareWithoutTta = false }, "PrivateTest").Metrics.Accuracy;
                Assert.Equal(recorded, fresh, 6);
                // The card quotes the numbers as percentages with two decimals.
                Assert.Contains((fresh * 100).ToString("F2", CultureInfo.InvariantCulture) + "%", card, StringComparison.Ordinal);
            }
            if (model.Metadata.Int8 is not null && prefix == "")
            {
                // The int8 network's figure, on ONNX Runtime as recognition runs it.
                var fresh = TestSetMetrics.MeasureInt8(path, faces)["int8_privatetest_accuracy"];
                Assert.True(model.Metadata.Metrics.TryGetValue("int8_privatetest_accuracy", out var recorded), $"{path}/model.json has no int8_privatetest_accuracy; score it with 'fer models score {path}'");
                Assert.Equal(recorded, fresh, 6);
                Assert.Contains($"int8 network (`{ModelMetadata.Int8FileName}`", card, StringComparison.Ordinal);
                Assert.Contains((fresh * 100).ToString("F2", CultureInfo.InvariantCulture) + "%", card, StringComparison.Ordinal);
            }
            checkedAny = true;
        }
        Assert.True(checkedAny, "no shipped model to check");
    }
}
