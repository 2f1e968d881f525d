using System.Text.Json;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Inference;
using FerSharp.Models;

using OpenCvSharp;

namespace FerSharp.Recognition.Tests;

/// <summary>An application that references only FerSharp recognizes faces with the shipped model, without libtorch.</summary>
public sealed class LeanRecognitionTests
{
    [Fact]
    public void Nothing_of_TorchSharp_or_libtorch_is_in_the_dependency_graph_or_the_output()
    {
        var deps = Path.Combine(AppContext.BaseDirectory, "FerSharp.Recognition.Tests.deps.json");
        Assert.True(File.Exists(deps), $"{deps} is missing: nothing to check the graph in");
        using var graph = JsonDocument.Parse(File.ReadAllText(deps));
        var libraries = graph.RootElement.GetProperty("libraries").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains(libraries, l => l.StartsWith("FerSharp/", StringComparison.Ordinal));
        Assert.Contains(libraries, l => l.StartsWith("Microsoft.ML.OnnxRuntime/", StringComparison.Ordinal));
        Assert.DoesNotContain(libraries, l => l.StartsWith("TorchSharp", StringComparison.OrdinalIgnoreCase) || l.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase));
        var files = Directory.EnumerateFiles(AppContext.BaseDirectory, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToList();
        Assert.DoesNotContain(files, f => f!.Contains("torch", StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name!.StartsWith("TorchSharp", StringComparison.Ordinal));
    }

    [Fact]
    public void More_threads_per_call_give_the_same_probabilities_and_a_bad_count_is_refused()
    {
        var face = new byte[FaceDataset.PixelsPerImage];
        new Random(7).NextBytes(face);
        var png = FaceImages.EncodePng(face);
        using var one = EmotionRecognizer.Load("fer2013-realtime");
        using var two = EmotionRecognizer.Load("fer2013-realtime", new RecognizerOptions { ThreadsPerCall = 2 });
        var a = Assert.Single(one.Recognize(png)).Probabilities;
        var b = Assert.Single(two.Recognize(png)).Probabilities;
        Assert.All(a, p => Assert.Equal(p.Value, b[p.Key], 5));
        var refused = Assert.Throws<ArgumentException>(() => EmotionRecognizer.Load("fer2013-realtime", new RecognizerOptions { ThreadsPerCall = 0 }));
        Assert.Contains("ThreadsPerCall", refused.Message);
    }

    [Fact]
    public void The_default_shipped_model_recognizes_a_face_on_ONNX_Runtime()
    {
        using var fer = EmotionRecognizer.Load();
        Assert.Equal(InferenceEngine.OnnxRuntime, fer.Model.Engine);
        Assert.Equal("fer2013-best", fer.Model.Metadata.Name);
        // A smooth synthetic face crop: classified whole (a crop needs no detector).
        var face = new byte[FaceDataset.PixelsPerImage];
        for (var p = 0; p < face.Length; p++) face[p] = (byte)(100 + 60 * Math.Sin(p % 48 / 5.0) * Math.Cos(p / 48 / 7.0));
        var found = Assert.Single(fer.Recognize(FaceImages.EncodePng(face)));
        Assert.Equal(1f, found.Probabilities.Values.Sum(), 4);
        Assert.Equal(found.Probabilities.MaxBy(p => p.Value).Key, found.Emotion);
        Assert.DoesNotContain(AppDomain.CurrentDomain.GetAssemblies(), a => a.GetName().Name!.StartsWith("TorchSharp", StringComparison.Ordinal));
    }

    [Fact]
    public void Real_faces_pasted_into_photos_are_found_and_mostly_recognized()
    {
        var csv = Fer2013Dataset.FindSharedData();
        if (csv is null)
        {
            // Without the shared data the synthetic test above still runs; say why this one did nothing.
            Console.WriteLine("skipped: shared data file fer2013.csv.gz not found (looked in ../shared/data/fer2013 and $FERSHARP_DATA)");
            return;
        }
        var faces = new Fer2013CsvReader(csv).ReadRows().Where(r => r.Split == DataSplit.PrivateTest).Take(40).ToList();
        using var fer = EmotionRecognizer.Load();
        var random = new Random(3);
        int found = 0, right = 0;
        foreach (var row in faces)
        {
            using var scene = LabelledScenes.Make(row.Pixels, SceneKind.Scene, random);
            var result = fer.Recognize(scene);
            if (result.Count == 0) continue;
            found++;
            if (result.MaxBy(f => f.Box.Width * f.Box.Height)!.Emotion == EmotionClasses.Fer2013[row.Emotion]) right++;
        }
        Assert.True(found >= 36, $"faces found in {found} of {faces.Count} photos");
        Assert.True(right >= found / 2, $"{right} of {found} found faces recognized");
    }
}
