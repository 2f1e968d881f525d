using System.Text.Json;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Inference;
using FerSharp.Models;

using OpenCvSharp;

namespace FerSharp.Tests;

/// <summary>Builds test photos at run time from FER2013 faces (never committed): faces scaled up onto a canvas.</summary>
internal static class FaceCanvas
{
    private static FaceDataset? _faces;

    public static FaceDataset Faces => _faces ??= Fer2013Dataset.Load(Fer2013Dataset.FindSharedData()!,
        new DatasetLoadOptions { Splits = [DataSplit.PrivateTest] });

    public static (Mat Image, List<FaceBox> Boxes) Build(IReadOnlyList<int> indices, int width, int height, int side, int shiftX = 0)
    {
        var canvas = new Mat(height, width, MatType.CV_8UC3, new Scalar(128, 128, 128));
        Cv2.Randn(canvas, new Scalar(128, 128, 128), new Scalar(12, 12, 12));
        var perRow = Math.Max(1, (width - 40) / (side + 60));
        var boxes = new List<FaceBox>();
        for (var k = 0; k < indices.Count; k++)
        {
            var x = 30 + k % perRow * (side + 60) + shiftX;
            var y = 30 + k / perRow * (side + 60);
            using var face = Mat.FromPixelData(48, 48, MatType.CV_8UC1, Faces.Face(indices[k]).ToArray());
            using var big = face.Resize(new Size(side, side), 0, 0, InterpolationFlags.Cubic);
            using var colour = big.CvtColor(ColorConversionCodes.GRAY2BGR);
            colour.CopyTo(canvas[new Rect(x, y, side, side)]);
            boxes.Add(new FaceBox(x, y, side, side));
        }
        return (canvas, boxes);
    }
}

[Collection("torch")]
public class RecognizerTests
{
    private static readonly int[] FaceIndices = Enumerable.Range(0, 12).ToArray();

    [SharedDataFact]
    public void Finds_pasted_faces_and_agrees_with_classifying_the_crops_directly()
    {
        using var recognizer = EmotionRecognizer.Load();
        var (image, truth) = FaceCanvas.Build(FaceIndices, 1280, 900, 160);
        using var _ = image;
        var faces = recognizer.Recognize(image);

        var found = 0;
        var agree = 0;
        var direct = recognizer.Model.PredictProbabilities(FaceIndices.Select(i => FaceCanvas.Faces.Face(i).ToArray()).ToList());
        for (var k = 0; k < truth.Count; k++)
        {
            var match = faces.Where(f => f.Box.IoU(truth[k]) >= 0.4).OrderByDescending(f => f.Box.IoU(truth[k])).FirstOrDefault();
            if (match == null) continue;
            found++;
            var directBest = recognizer.Model.ClassNames[Array.IndexOf(direct[k], direct[k].Max())];
            if (directBest == match.Emotion) agree++;
        }
        var falsePositives = faces.Count(f => truth.All(t => f.Box.IoU(t) < 0.2));
        // The cascade finds ~72% of FER2013's tightly cropped faces; 7 of 12 allows for chance.
        Assert.True(found >= 7, $"found {found} of {truth.Count} faces");
        Assert.True(falsePositives <= 1, $"{falsePositives} detections are not on a pasted face");
        Assert.True(agree >= found * 2 / 3, $"pipeline agreed with direct classification on {agree} of {found} faces");
        Assert.All(faces, f =>
        {
            Assert.Equal(recognizer.Model.ClassNames.Count, f.Probabilities.Count);
            Assert.Equal(1.0, f.Probabilities.Values.Sum(), 3);
            Assert.Equal(f.Probabilities.Values.Max(), f.Confidence);
        });
    }

    [SharedDataFact]
    public void A_48x48_face_crop_is_classified_whole_and_matches_direct_classification()
    {
        using var recognizer = EmotionRecognizer.Load();
        var bytes = FaceImages.EncodePng(FaceCanvas.Faces.Face(3));
        var faces = recognizer.Recognize(bytes);
        var face = Assert.Single(faces);
        Assert.Equal(new FaceBox(0, 0, 48, 48), face.Box);
        var direct = recognizer.Model.PredictProbabilities([FaceCanvas.Faces.Face(3).ToArray()])[0];
        Assert.Equal(direct.Max(), face.Confidence, 5);
    }

    [Fact]
    public void Ten_crop_tta_averages_the_crops_of_each_face_in_the_api_and_the_cli()
    {
        using var dir = new TempDir();
        var face = Synthetic.Patterns(1, seed: 21).Face(3).ToArray();
        var png = dir.File("face.png");
        File.WriteAllBytes(png, FaceImages.EncodePng(face));
        // The float network, which answers as libtorch does (the int8 copy is compared with it in Int8QuantizationTests).
        var exact = new ClassifierOptions { Precision = NetworkPrecision.Float };
        using var plain = EmotionRecognizer.Load(null, null, exact);
        using var tenCrop = EmotionRecognizer.Load(null, new RecognizerOptions { Tta = TtaMode.Crops }, exact);

        // The ten views cut and scaled on libtorch, as training and evaluation do.
        using var onLibtorch = TorchFaceClassifier.Load(ModelCatalog.DefaultModelPath()!);
        var expected = onLibtorch.PredictProbabilities([face], TtaMode.Crops)[0];
        var averaged = Assert.Single(tenCrop.Recognize(png));
        var single = Assert.Single(plain.Recognize(png));
        var classes = tenCrop.Model.ClassNames;
        for (var c = 0; c < classes.Count; c++) Assert.Equal(expected[c], averaged.Probabilities[classes[c]], 5);
        Assert.True(classes.Any(c => Math.Abs(averaged.Probabilities[c] - single.Probabilities[c]) > 1e-4), "ten crops gave the one-view answer");

        var cli = Cli.Run("predict", png, "--tta", "crops", "--precision", "Float", "--format", "json");
        Assert.True(cli.ExitCode == 0, cli.Stderr);
        var printed = JsonDocument.Parse(cli.Stdout).RootElement[0].GetProperty("faces")[0];
        // The CLI prints 4 decimals: rounding to a number of places could split 0.44549 and 0.4455.
        Assert.Equal(averaged.Confidence, printed.GetProperty("confidence").GetDouble(), tolerance: 5.1e-5);
    }

    [Fact]
    public void Concurrent_callers_get_the_same_answers()
    {
        using var recognizer = EmotionRecognizer.Load();
        var images = Enumerable.Range(0, 8).Select(i =>
        {
            var data = Synthetic.Patterns(1, seed: i);
            return FaceImages.EncodePng(data.Face(i % 7));
        }).ToArray();
        var serial = images.Select(b => recognizer.Recognize(b).Single().Probabilities["happy"]).ToArray();
        var parallel = new float[images.Length];
        Parallel.For(0, images.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, n =>
        {
            var i = n % images.Length;
            parallel[i] = recognizer.Recognize(images[i]).Single().Probabilities["happy"];
        });
        Assert.Equal(serial, parallel);
    }

    [Fact]
    public void Missing_cascade_names_the_debian_package()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => new HaarFaceDetector(new HaarDetectorOptions { CascadePath = "/nonexistent/cascade.xml" }));
        Assert.Contains("opencv-data", ex.Message);
    }

    [Fact]
    public void Iou_and_tracker_follow_moving_faces_with_stable_ids()
    {
        Assert.Equal(1, new FaceBox(0, 0, 10, 10).IoU(new FaceBox(0, 0, 10, 10)), 9);
        Assert.Equal(0, new FaceBox(0, 0, 10, 10).IoU(new FaceBox(20, 20, 5, 5)), 9);
        Assert.Equal(25.0 / 175, new FaceBox(0, 0, 10, 10).IoU(new FaceBox(5, 5, 10, 10)), 9);

        string[] classes = ["happy", "sad"];
        var tracker = new FaceTracker(classes, smoothing: 0.5);
        static FaceEmotion Face(int x, float happy) => new(new FaceBox(x, 0, 50, 50), happy > 0.5 ? "happy" : "sad", Math.Max(happy, 1 - happy),
            new Dictionary<string, float> { ["happy"] = happy, ["sad"] = 1 - happy });
        var first = tracker.Update([Face(0, 1f), Face(300, 0f)]);
        var second = tracker.Update([Face(305, 1f), Face(4, 1f)]); // both moved; order swapped
        Assert.Equal(first.Select(t => t.Id).Order(), second.Select(t => t.Id).Order());
        var right = second.Single(t => t.Face.Box.X == 305);
        Assert.Equal(first.Single(t => t.Face.Box.X == 300).Id, right.Id);
        Assert.Equal(0.5f, right.Face.Probabilities["happy"], 5); // smoothed: 0.5 * 0 + 0.5 * 1
        Assert.Equal(2, tracker.TracksStarted);
    }
}

[Collection("torch")]
public class PredictCliTests
{
    private static string WriteBadFiles(TempDir dir)
    {
        var folder = Path.Combine(dir.Path, "bad");
        Directory.CreateDirectory(folder);
        var rng = new Random(1);
        var noise = new byte[5000];
        rng.NextBytes(noise);
        File.WriteAllBytes(Path.Combine(folder, "corrupt.png"), [0x89, 0x50, 0x4E, 0x47, .. noise]);
        File.WriteAllBytes(Path.Combine(folder, "empty.jpg"), []);
        File.WriteAllText(Path.Combine(folder, "text.jpg"), "this is a text file with an image extension");
        using (var one = new Mat(1, 1, MatType.CV_8UC3, Scalar.All(100))) Cv2.ImWrite(Path.Combine(folder, "one-pixel.png"), one);
        // a PNG whose header claims 20000x20000 pixels (1.2 GB decoded) followed by garbage: a decompression bomb
        byte[] ihdr = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, (byte)'I', (byte)'H', (byte)'D', (byte)'R',
            0, 0, 0x4E, 0x20, 0, 0, 0x4E, 0x20, 8, 2, 0, 0, 0, 0, 0, 0, 0];
        File.WriteAllBytes(Path.Combine(folder, "bomb.png"), [.. ihdr, .. noise]);
        return folder;
    }

    [Fact]
    public void Bad_files_each_get_a_clear_error_and_the_rest_go_on()
    {
        using var dir = new TempDir();
        var folder = WriteBadFiles(dir);
        var good = Path.Combine(folder, "good.png");
        File.WriteAllBytes(good, FaceImages.EncodePng(Synthetic.Patterns(1).Face(0)));
        var video = Path.Combine(dir.Path, "clip.mp4");
        File.WriteAllBytes(video, [0, 0, 0, 0x20, .. "ftypisom"u8.ToArray()]);
        var result = Cli.Run("predict", folder, Path.Combine(dir.Path, "missing.jpg"), video, "--format", "json");
        Assert.Equal(1, result.ExitCode);
        var entries = JsonDocument.Parse(result.Stdout).RootElement.EnumerateArray().ToDictionary(e => Path.GetFileName(e.GetProperty("file").GetString()!));
        Assert.Equal(8, entries.Count);
        Assert.Contains("a video file: use fer video", entries["clip.mp4"].GetProperty("error").GetString());
        Assert.False(entries["good.png"].TryGetProperty("error", out _));
        Assert.Single(entries["good.png"].GetProperty("faces").EnumerateArray());
        Assert.Contains("not a readable image", entries["corrupt.png"].GetProperty("error").GetString());
        Assert.Contains("empty file", entries["empty.jpg"].GetProperty("error").GetString());
        Assert.Contains("not a readable image", entries["text.jpg"].GetProperty("error").GetString());
        Assert.Contains("too small", entries["one-pixel.png"].GetProperty("error").GetString());
        Assert.Contains("20000x20000", entries["bomb.png"].GetProperty("error").GetString());
        Assert.Contains("no such file", entries["missing.jpg"].GetProperty("error").GetString());
        Assert.Contains("bomb.png: image declares 20000x20000", result.Stderr);
        Assert.DoesNotContain("   at ", result.Stderr);
    }

    [Fact]
    public void An_image_piped_into_predict_dash_gets_the_same_answer_as_the_file()
    {
        using var dir = new TempDir();
        var png = FaceImages.EncodePng(Synthetic.Patterns(1).Face(0));
        var file = dir.File("face.png");
        File.WriteAllBytes(file, png);
        var annotated = Path.Combine(dir.Path, "annotated");
        var fromFile = Cli.Run("predict", file, "--format", "json");
        var piped = Cli.Piped(png, "predict", "-", "--format", "json", "--annotate", annotated);
        Assert.True(piped.ExitCode == 0, piped.Stderr);
        var entry = JsonDocument.Parse(piped.Stdout).RootElement[0];
        Assert.Equal("(stdin)", entry.GetProperty("file").GetString());
        Assert.Equal(JsonDocument.Parse(fromFile.Stdout).RootElement[0].GetProperty("faces").GetRawText(), entry.GetProperty("faces").GetRawText());
        Assert.True(File.Exists(Path.Combine(annotated, "stdin.png")));

        var garbage = Cli.Piped("not an image"u8.ToArray(), "predict", "-");
        Assert.Equal(1, garbage.ExitCode);
        // The table names the failed input in its row (once: not again on stderr).
        Assert.Contains("(stdin)", garbage.Stdout);
        Assert.Contains("not a readable image", garbage.Stdout);
        var twice = Cli.Piped(png, "predict", "-", "-");
        Assert.Equal(2, twice.ExitCode);
        Assert.Contains("only once", twice.Stderr);
    }

    [SharedDataFact]
    public void Predict_json_follows_the_schema_and_annotate_writes_copies()
    {
        using var dir = new TempDir();
        var (image, truth) = FaceCanvas.Build([0, 1, 2], 900, 400, 150);
        var photo = dir.File("group.jpg");
        using (image) Cv2.ImWrite(photo, image);
        var blank = dir.File("blank.png");
        using (var empty = new Mat(300, 300, MatType.CV_8UC3, Scalar.All(200))) Cv2.ImWrite(blank, empty);
        var annotated = Path.Combine(dir.Path, "annotated");

        var result = Cli.Run("predict", photo, blank, "--format", "json", "--annotate", annotated);
        Assert.True(result.ExitCode == 0, result.Stderr);
        var root = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.Equal(2, root.GetArrayLength());
        var faces = root[0].GetProperty("faces").EnumerateArray().ToList();
        Assert.True(faces.Count >= 2, $"{faces.Count} faces found");
        foreach (var face in faces)
        {
            var box = face.GetProperty("box");
            foreach (var key in new[] { "x", "y", "width", "height" }) Assert.True(box.GetProperty(key).GetInt32() >= 0);
            var emotion = face.GetProperty("emotion").GetString();
            var probabilities = face.GetProperty("probabilities").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
            Assert.Equal(EmotionClasses.Fer2013.Order(), probabilities.Keys.Order());
            Assert.Equal(probabilities.Values.Max(), face.GetProperty("confidence").GetDouble(), 3);
            Assert.Equal(emotion, probabilities.MaxBy(p => p.Value).Key);
            // BlazeFace's own confidence, at least the default --min-score.
            Assert.Equal("detected", face.GetProperty("found").GetString());
            Assert.InRange(face.GetProperty("detector_score").GetDouble(), 0.6, 1.0);
        }
        Assert.Empty(root[1].GetProperty("faces").EnumerateArray()); // no face is a result, not an error
        // A higher --min-score keeps exactly the faces that scored that much.
        var least = faces.Min(f => f.GetProperty("detector_score").GetDouble());
        var strict = Cli.Run("predict", photo, "--format", "json", "--min-score", (least + 1e-3).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(strict.ExitCode == 0, strict.Stderr);
        Assert.Equal(faces.Count(f => f.GetProperty("detector_score").GetDouble() > least + 1e-3), JsonDocument.Parse(strict.Stdout).RootElement[0].GetProperty("faces").GetArrayLength());
        Assert.Equal(2, Cli.Run("predict", photo, "--min-score", "1.5").ExitCode);
        Assert.True(File.Exists(Path.Combine(annotated, "group.jpg")));
        using var drawn = Cv2.ImRead(Path.Combine(annotated, "group.jpg"));
        Assert.Equal(new Size(900, 400), drawn.Size());

        var csv = Cli.Run("predict", photo, "--format", "csv");
        Assert.Equal(0, csv.ExitCode);
        var lines = csv.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("file,face,x,y,width,height,emotion,confidence,angry,", lines[0], StringComparison.Ordinal);
        Assert.Equal(faces.Count + 1, lines.Length);

        // The table says which engine ran: ONNX Runtime unless --engine names another, with the same answer.
        static string Words(string text) => System.Text.RegularExpressions.Regex.Replace(text, @"\s+", " ");
        var table = Cli.Run("predict", photo, "--precision", "Float", "--format", "json");
        Assert.True(table.ExitCode == 0, table.Stderr);
        Assert.Contains("engine OnnxRuntime", Words(Cli.Run("predict", photo).Stdout));
        var byHand = Cli.Run("predict", photo, "--engine", "TorchSharp", "--format", "json");
        Assert.True(byHand.ExitCode == 0, byHand.Stderr);
        var (lean, torch) = (JsonDocument.Parse(table.Stdout).RootElement[0], JsonDocument.Parse(byHand.Stdout).RootElement[0]);
        Assert.Equal("OnnxRuntime", lean.GetProperty("engine").GetString());
        Assert.Equal("TorchSharp", torch.GetProperty("engine").GetString());
        var (a, b) = (lean.GetProperty("faces")[0].GetProperty("probabilities"), torch.GetProperty("faces")[0].GetProperty("probabilities"));
        foreach (var c in a.EnumerateObject()) Assert.Equal(c.Value.GetDouble(), b.GetProperty(c.Name).GetDouble(), 3);
    }

    [SharedDataFact]
    public void Video_written_at_test_time_goes_through_fer_video_with_right_frames_and_csv_rows()
    {
        using var dir = new TempDir();
        var video = dir.File("clip.avi");
        const int frames = 15;
        // Faces found in the raw frames with fer video's fast detector settings (following faces from frame to
        // frame, as fer video does), and with the photo ones.
        var expectedRows = 0;
        var expectedAccurateRows = 0;
        using (var recognizer = EmotionRecognizer.Load(options: RecognizerOptions.Video))
        using (var photoRecognizer = EmotionRecognizer.Load())
        using (var writer = new VideoWriter(video, FourCC.MJPG, 10, new Size(640, 480)))
        {
            Assert.True(writer.IsOpened());
            var follower = recognizer.FollowFaces();
            var accurateFollower = photoRecognizer.FollowFaces();
            for (var f = 0; f < frames; f++)
            {
                var (image, _) = FaceCanvas.Build([0, 1, 2, 3], 640, 480, 130, shiftX: f * 2); // faces drift right
                using (image)
                {
                    writer.Write(image);
                    expectedRows += recognizer.Recognize(image, follower).Count;
                    expectedAccurateRows += photoRecognizer.Recognize(image, accurateFollower).Count;
                }
            }
        }
        Assert.True(expectedRows >= frames, "the test clip should show at least one detectable face per frame");
        var csvPath = dir.File("frames.csv");
        var outPath = dir.File("annotated.mp4");
        var result = Cli.Run("video", video, "--csv", csvPath, "--out", outPath);
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains($"{frames} frames ({frames} analysed)", result.Stdout);
        Assert.Contains("FPS", result.Stdout);

        var rows = File.ReadAllLines(csvPath);
        Assert.StartsWith("frame,time_s,face_id,x,y,width,height,emotion,confidence", rows[0], StringComparison.Ordinal);
        var data = rows.Skip(1).Select(r => r.Split(',')).ToList();
        Assert.Equal(Enumerable.Range(0, frames).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), data.Select(r => r[0]).Distinct());
        // MJPG compression shifts pixels slightly, so allow the detector a little slack against the raw frames.
        Assert.InRange(data.Count, expectedRows * 0.9, expectedRows * 1.1);
        Assert.True(data.Select(r => r[2]).Distinct().Count() <= 5, "face ids are not stable across frames");

        using var check = new VideoCapture(outPath);
        Assert.True(check.IsOpened());
        Assert.Equal(frames, check.FrameCount);

        // --jsonl: the same faces, one line per frame as it is analysed, each face with its track id.
        var jsonl = Cli.Run("video", video, "--jsonl");
        Assert.True(jsonl.ExitCode == 0, jsonl.Stderr);
        var frameLines = jsonl.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(Enumerable.Range(0, frames), frameLines.Select(l => l.GetProperty("frame").GetInt32()));
        var jsonFaces = frameLines.SelectMany(l => l.GetProperty("faces").EnumerateArray()).ToList();
        Assert.Equal(data.Count, jsonFaces.Count);
        Assert.Equal(data.Select(r => (int.Parse(r[2], System.Globalization.CultureInfo.InvariantCulture), r[7])),
            jsonFaces.Select(f => (f.GetProperty("id").GetInt32(), f.GetProperty("emotion").GetString()!)));
        Assert.All(jsonFaces, f => Assert.Equal(1.0, f.GetProperty("probabilities").EnumerateObject().Sum(p => p.Value.GetDouble()), 2));

        var every = Cli.Run("video", video, "--every", "5");
        Assert.Contains($"{frames} frames (3 analysed)", every.Stdout);
        // The photo detector settings on request, the same faces; an unknown setting is refused.
        var accurate = Cli.Run("video", video, "--detection", "accurate", "--csv", dir.File("accurate.csv"));
        Assert.True(accurate.ExitCode == 0, accurate.Stderr);
        Assert.InRange(File.ReadAllLines(dir.File("accurate.csv")).Length - 1, expectedAccurateRows * 0.9, expectedAccurateRows * 1.1);
        Assert.NotEqual(0, Cli.Run("video", video, "--detection", "sloppy").ExitCode);
        var camera = Cli.Run("video", "camera:7");
        Assert.Equal(2, camera.ExitCode);
        Assert.Contains("camera 7 could not be opened", camera.Stderr);
    }
}
