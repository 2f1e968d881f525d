using System.Text.Json;

using FerSharp.Data;
using FerSharp.Evaluation;

using OpenCvSharp;

namespace FerSharp.Tests;

/// <summary><c>fer evaluate --detect</c>: labelled photos through detect, crop and classify.</summary>
public sealed class DetectedEvaluationTests
{
    [SharedDataFact]
    public void Scenes_of_known_faces_are_found_classified_and_a_photo_without_a_face_is_counted()
    {
        using var dir = new TempDir();
        var photos = dir.File("photos");
        var faces = Fer2013Dataset.Load(Fer2013Dataset.FindSharedData()!, new DatasetLoadOptions { Splits = [DataSplit.PrivateTest] });
        Assert.Equal(24, LabelledScenes.Write(faces, photos, 24));
        // A plain wall, filed as happy: no face to find, so it must be counted as a wrong answer.
        using (var wall = new Mat(480, 640, MatType.CV_8UC3, new Scalar(150, 160, 170)))
        {
            Cv2.ImWrite(Path.Combine(photos, "happy", "wall.png"), wall);
        }
        var run = Cli.Run("evaluate", "--data", photos, "--detect", "--json", "-o", dir.File("report"));
        Assert.True(run.ExitCode == 0, run.Stderr + run.Stdout);
        using var metrics = JsonDocument.Parse(run.Stdout);
        var root = metrics.RootElement;
        Assert.Equal(25, root.GetProperty("count").GetInt32());
        Assert.True(root.GetProperty("no_face").GetInt32() >= 1);
        var found = 25 - root.GetProperty("no_face").GetInt32();
        Assert.True(found >= 20, $"only {found} of 25 photos gave a face");
        // The shipped model knows these faces far better than chance (1/7).
        Assert.True(root.GetProperty("accuracy").GetDouble() > 0.4, run.Stdout);
        var rows = File.ReadAllLines(dir.File("report/predictions.csv"));
        Assert.Equal(26, rows.Length);
        Assert.Contains(rows, r => r.Contains("wall.png") && r.Split(',')[2] == "" && r.Split(',')[3] == "0");
        Assert.True(root.GetProperty("accuracy_on_faces").GetDouble() >= root.GetProperty("accuracy").GetDouble());
    }

    [SharedDataFact]
    public void Tight_crops_larger_than_a_face_crop_are_found_with_a_border_added_and_say_so()
    {
        var faces = Fer2013Dataset.Load(Fer2013Dataset.FindSharedData()!, new DatasetLoadOptions { Splits = [DataSplit.PrivateTest] });
        using var plain = Inference.EmotionRecognizer.Load(null, new Inference.RecognizerOptions { RetryWithBorder = false });
        using var retrying = Inference.EmotionRecognizer.Load(null, new Inference.RecognizerOptions());
        int missed = 0, recovered = 0;
        for (var i = 0; i < 40; i++)
        {
            using var crop = LabelledScenes.Make(faces.Face(i).ToArray(), SceneKind.TightCrop, new Random(i));
            if (plain.Recognize(crop).Count > 0) continue;
            missed++;
            var found = retrying.Recognize(crop);
            if (found.Count == 0) continue;
            recovered++;
            Assert.All(found, f => Assert.Equal(Inference.FaceFinding.DetectedWithBorder, f.Finding));
            Assert.All(found, f => Assert.True(f.Box.X >= 0 && f.Box.Y >= 0 && f.Box.X + f.Box.Width <= crop.Width && f.Box.Y + f.Box.Height <= crop.Height, $"{f.Box} outside {crop.Width}x{crop.Height}"));
        }
        Assert.True(missed > 0, "every tight crop was found without a border: nothing to test");
        Assert.True(recovered * 2 >= missed, $"a border recovered {recovered} of {missed} tight crops the detector missed");
    }

    [Fact]
    public void A_data_set_without_some_classes_is_scored_on_its_own_classes()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("set/happiness"));
        Directory.CreateDirectory(dir.File("set/anger"));
        File.WriteAllBytes(dir.File("set/happiness/a.jpg"), [1]);
        File.WriteAllBytes(dir.File("set/anger/b.png"), [1]);
        var photos = DetectedEvaluation.ListPhotos(dir.File("set"), EmotionClasses.Fer2013);
        Assert.Equal(["angry", "happy"], photos.Select(p => p.TrueClass).Order());
    }

    [Fact]
    public void A_folder_without_images_or_with_a_folder_that_is_no_class_is_refused_by_name()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("empty/happy"));
        File.WriteAllText(dir.File("empty/happy/notes.txt"), "no image");
        var empty = Cli.Run("evaluate", "--data", dir.File("empty"), "--detect");
        Assert.Equal(2, empty.ExitCode);
        Assert.Contains("no images found", empty.Stderr);

        Directory.CreateDirectory(dir.File("odd/holidays"));
        var odd = Cli.Run("evaluate", "--data", dir.File("odd"), "--detect");
        Assert.Equal(2, odd.ExitCode);
        Assert.Contains("'holidays' is not an expression", odd.Stderr);

        var contempt = Assert.Throws<DatasetFormatException>(() =>
        {
            Directory.CreateDirectory(dir.File("plus/contempt"));
            return DetectedEvaluation.ListPhotos(dir.File("plus"), EmotionClasses.Fer2013);
        });
        Assert.Contains("not a class of this model", contempt.Message);
    }
}
