using System.Text.Json;

using FerSharp.Inference;

using OpenCvSharp;

namespace FerSharp.Tests;

public class BlazeFaceTests
{
    /// <summary>One PrivateTest face of 120 px turned by <paramref name="angle"/> degrees at (x, y) on a grey canvas.</summary>
    private static (Mat Image, FaceBox Truth) TurnedFace(int index, double angle, int width = 640, int height = 480, int x = 200, int y = 150)
    {
        const int side = 120;
        var canvas = new Mat(height, width, MatType.CV_8UC3, new Scalar(120, 130, 140));
        using var colour = PastedFace(index, side);
        using var turn = Cv2.GetRotationMatrix2D(new Point2f(side / 2f, side / 2f), angle, 1);
        using var turned = colour.WarpAffine(turn, colour.Size(), InterpolationFlags.Linear, BorderTypes.Replicate);
        turned.CopyTo(canvas[new Rect(x, y, side, side)]);
        return (canvas, new FaceBox(x, y, side, side));
    }

    /// <summary>PrivateTest face <paramref name="index"/> enlarged to <paramref name="side"/> px, in colour, to paste into a photo.</summary>
    /// <summary>Test faces of one size in rows on a plain grey photo, and where each is.</summary>
    private static Mat FacesInRows(Size size, int count, int perRow, int side, Point first, Size step, out List<FaceBox> truths)
    {
        var photo = new Mat(size.Height, size.Width, MatType.CV_8UC3, new Scalar(120, 130, 140));
        truths = [];
        for (var i = 0; i < count; i++)
        {
            using var face = PastedFace(i, side);
            var (x, y) = (first.X + i % perRow * step.Width, first.Y + i / perRow * step.Height);
            face.CopyTo(photo[new Rect(x, y, side, side)]);
            truths.Add(new FaceBox(x, y, side, side));
        }
        return photo;
    }

    /// <summary>The faces a detector finds in a photo, and how many whole-photo looks it made for them.</summary>
    private static (IReadOnlyList<FaceBox> Boxes, long Looks) DetectCountingLooks(BlazeFaceDetector detector, Mat photo)
    {
        var before = detector.LooksMade;
        var boxes = detector.Detect(photo);
        return (boxes, detector.LooksMade - before);
    }

    /// <summary>
    /// Small faces ask for the finer looks: the default detector makes <paramref name="looks"/> looks, finds what
    /// one making every look finds, and at least <paramref name="atLeast"/> of the faces.
    /// </summary>
    private static void AssertHintedLooksFind(BlazeFaceDetector hinted, BlazeFaceDetector always, Mat photo, List<FaceBox> truths, long looks, int atLeast)
    {
        var (found, made) = DetectCountingLooks(hinted, photo);
        Assert.Equal(looks, made);
        Assert.Equal(DetectCountingLooks(always, photo).Boxes, found);
        var hits = truths.Count(t => found.Any(b => b.IoU(t) >= 0.4));
        Assert.True(hits >= atLeast, $"{hits} of {truths.Count} faces of {truths[0].Width} px found, at least {atLeast} expected");
    }

    private static Mat PastedFace(int index, int side)
    {
        using var face = Mat.FromPixelData(48, 48, MatType.CV_8UC1, FaceCanvas.Faces.Face(index).ToArray());
        using var big = face.Resize(new Size(side, side), 0, 0, InterpolationFlags.Cubic);
        return big.CvtColor(ColorConversionCodes.GRAY2BGR);
    }

    private static int CountFound(IFaceDetector detector, IEnumerable<(Mat Image, FaceBox Truth)> scenes)
    {
        var found = 0;
        foreach (var (image, truth) in scenes)
        {
            using (image)
            {
                if (detector.Detect(image).Any(b => b.IoU(truth) >= 0.4)) found++;
            }
        }
        return found;
    }

    [SharedDataFact]
    public void Finds_tilted_faces_that_the_cascade_misses()
    {
        var angles = Enumerable.Range(0, 30).Select(i => (i % 2 == 0 ? 1 : -1) * 25.0).ToList();
        using var blazeFace = new BlazeFaceDetector();
        using var haar = new HaarFaceDetector();
        var blazeFound = CountFound(blazeFace, angles.Select((a, i) => TurnedFace(i, a)));
        var haarFound = CountFound(haar, angles.Select((a, i) => TurnedFace(i, a)));
        Assert.True(blazeFound >= 21, $"BlazeFace found {blazeFound} of 30 faces turned by 25 degrees");
        Assert.True(blazeFound >= haarFound + 8, $"BlazeFace found {blazeFound}, the cascade {haarFound}");
    }

    [SharedDataFact]
    public void The_roll_follows_the_eyes_and_levelling_undoes_a_turn()
    {
        using var detector = new BlazeFaceDetector();
        var rolls = new List<(double Turned, double Found)>();
        var closer = 0;
        var compared = 0;
        for (var i = 0; i < 12; i++)
        {
            var angle = i % 2 == 0 ? 20.0 : -20.0; // OpenCV: positive turns anticlockwise as seen
            var (upright, _) = TurnedFace(i, 0);
            var (image, truth) = TurnedFace(i, angle);
            using (upright)
            using (image)
            {
                var face = detector.Detect(image).FirstOrDefault(b => b.IoU(truth) >= 0.4);
                var level = detector.Detect(upright).FirstOrDefault(b => b.IoU(truth) >= 0.4);
                if (face.Roll is not { } roll || level.Roll is not { } uprightRoll) continue;
                rolls.Add((angle, roll - uprightRoll));
                // The levelled crop of the turned face is nearer the upright face's (levelled too, as FER2013's own
                // faces lean a little) than the crop as turned is.
                var reference = EmotionRecognizer.CropFace(upright, level, 0.1, level: true);
                // The central 32x32 pixels: the face, not the corners that the turn filled with its border.
                double Distance(byte[] crop) => Enumerable.Range(0, 48 * 48).Where(p => p % 48 is >= 8 and < 40 && p / 48 is >= 8 and < 40)
                    .Average(p => Math.Abs(crop[p] - reference[p]));
                compared++;
                if (Distance(EmotionRecognizer.CropFace(image, face with { X = level.X, Y = level.Y, Width = level.Width, Height = level.Height }, 0.1, level: true))
                    < Distance(EmotionRecognizer.CropFace(image, level, 0.1))) closer++;
            }
        }
        Assert.True(rolls.Count >= 9, $"a roll for {rolls.Count} of 12 turned faces");
        // An anticlockwise turn raises the eye on the image's right: a negative roll.
        Assert.All(rolls, r => Assert.InRange(r.Found, -r.Turned - 8, -r.Turned + 8));
        Assert.True(closer >= compared - 1, $"levelled crops nearer the upright face for {closer} of {compared}");
    }

    [SharedDataFact]
    public void Boxes_land_on_the_face_in_wide_and_tall_images_anywhere_in_the_frame()
    {
        using var detector = new BlazeFaceDetector();
        // The scaled image sits in the padded input's top-left corner; faces far right or far down test the way back.
        foreach (var (width, height, x, y) in new[] { (1200, 400, 1000, 200), (400, 1200, 220, 1000), (640, 480, 20, 20), (640, 480, 500, 340) })
        {
            var (image, truth) = TurnedFace(3, 0, width, height, x, y);
            using (image)
            {
                var boxes = detector.Detect(image);
                Assert.True(boxes.Count == 1, $"{width}x{height}, face at ({x},{y}): {boxes.Count} boxes");
                Assert.True(boxes[0].IoU(truth) >= 0.5, $"{width}x{height}: box {boxes[0]} against {truth} (IoU {boxes[0].IoU(truth):F2})");
            }
        }
    }

    [SharedDataFact]
    public void Images_of_many_sizes_in_turn_give_each_size_its_own_boxes()
    {
        // Each size needs two input shapes, so the run passes the detector's cache of networks more than once.
        var sizes = new[] { (640, 480), (800, 600), (1200, 400), (400, 1200), (1024, 768), (640, 480), (1200, 400) };
        using var detector = new BlazeFaceDetector();
        var seen = new Dictionary<(int, int), List<FaceBox>>();
        foreach (var (width, height) in sizes)
        {
            var (image, truth) = TurnedFace(3, 10, width, height, x: width / 3, y: height / 3);
            using (image)
            {
                var boxes = detector.Detect(image).ToList();
                Assert.True(boxes.Count(b => b.IoU(truth) >= 0.5) == 1, $"{width}x{height}: {boxes.Count} boxes, none on the face at {truth}");
                if (seen.TryGetValue((width, height), out var before)) Assert.Equal(before, boxes);
                else seen[(width, height)] = boxes;
            }
        }
    }

    [Fact]
    public void Finds_no_face_in_images_without_one()
    {
        using var detector = new BlazeFaceDetector();
        using var grey = new Mat(480, 640, MatType.CV_8UC3, Scalar.All(128));
        using var noise = new Mat(480, 640, MatType.CV_8UC3);
        Cv2.Randu(noise, Scalar.All(0), Scalar.All(255));
        var ramp = new byte[480 * 640];
        for (var i = 0; i < ramp.Length; i++) ramp[i] = (byte)(i / 640 * 255 / 480);
        using var gradient = Mat.FromPixelData(480, 640, MatType.CV_8UC1, ramp);
        using var board = new Mat(480, 640, MatType.CV_8UC1, Scalar.All(0));
        for (var i = 0; i < 8; i++)
        {
            for (var j = 0; j < 6; j++)
            {
                if ((i + j) % 2 == 0) board[new Rect(i * 80, j * 80, 80, 80)].SetTo(Scalar.All(255));
            }
        }
        foreach (var (name, image) in new[] { ("grey", grey), ("noise", noise), ("gradient", gradient), ("board", board) })
        {
            Assert.True(detector.Detect(image).Count == 0, $"a face was found in the {name} image");
        }
        Assert.Empty(detector.Detect(new Mat()));
    }

    [Fact]
    public void Overlapping_boxes_merge_into_their_score_weighted_mean_and_separate_ones_stay()
    {
        var boxes = new List<Rect2d>
        {
            new(100, 100, 50, 50),
            new(110, 100, 50, 50), // IoU 0.67 with the first
            new(120, 130, 20, 15), // inside the first two, IoU 0.12 with the first
            new(400, 300, 40, 40),
        };
        var scores = new List<float> { 0.9f, 0.6f, 0.5f, 0.7f };
        var merged = BlazeFaceDetector.WeightedSuppression(boxes, scores, 0.3f);
        Assert.Equal(2, merged.Count);
        var total = 0.9 + 0.6 + 0.5;
        Assert.Equal((100 * 0.9 + 110 * 0.6 + 120 * 0.5) / total, merged[0].X, 4);
        Assert.Equal((50 * 0.9 + 50 * 0.6 + 20 * 0.5) / total, merged[0].Width, 4);
        Assert.Equal(new Rect2d(400, 300, 40, 40), merged[1]);
    }

    [SharedDataFact]
    public void The_second_look_at_twice_the_scale_finds_small_faces_the_first_misses()
    {
        // 44 px faces in 640x480: about 18 px in the first look's 256x192, under what the model finds.
        static IEnumerable<(Mat, FaceBox)> Small() => Enumerable.Range(0, 20).Select(i =>
        {
            var canvas = new Mat(480, 640, MatType.CV_8UC3, new Scalar(120, 130, 140));
            using var face = Mat.FromPixelData(48, 48, MatType.CV_8UC1, FaceCanvas.Faces.Face(i).ToArray());
            using var small = face.Resize(new Size(44, 44), 0, 0, InterpolationFlags.Area);
            using var colour = small.CvtColor(ColorConversionCodes.GRAY2BGR);
            var (x, y) = (60 + i * 25, 80 + i * 15);
            colour.CopyTo(canvas[new Rect(x, y, 44, 44)]);
            return (canvas, new FaceBox(x, y, 44, 44));
        });
        using var photo = new BlazeFaceDetector();
        using var video = new BlazeFaceDetector(BlazeFaceOptions.Video);
        var withSecond = CountFound(photo, Small());
        var firstOnly = CountFound(video, Small());
        Assert.True(withSecond >= 14 && withSecond >= firstOnly + 8, $"20 faces of 44 px: {withSecond} found with the second look, {firstOnly} without");
    }

    [SharedDataFact]
    public void Photos_detected_on_many_threads_at_once_get_the_boxes_they_get_alone()
    {
        // Alone, a photo's looks run side by side; with as many photos at once as cores, one after the other.
        // Either way each photo must get its own boxes.
        var scenes = Enumerable.Range(0, 6).Select(i => TurnedFace(i, 0, x: 60 + 70 * i, y: 40 + 40 * i)).ToList();
        try
        {
            using var detector = new BlazeFaceDetector();
            var alone = scenes.Select(s => detector.Detect(s.Image)).ToList();
            var found = alone.Zip(scenes).Count(p => p.First.Any(b => b.IoU(p.Second.Truth) >= 0.4));
            Assert.True(found >= 4, $"{found} of 6 faces found alone");
            var together = new IReadOnlyList<FaceBox>[scenes.Count * 4];
            Parallel.For(0, together.Length, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i => together[i] = detector.Detect(scenes[i % scenes.Count].Image));
            for (var i = 0; i < together.Length; i++) Assert.Equal(alone[i % scenes.Count], together[i]);
        }
        finally
        {
            foreach (var (image, _) in scenes) image.Dispose();
        }
    }

    [SharedDataFact]
    public void The_look_at_512_is_made_only_when_the_look_at_256_hints_at_smaller_faces()
    {
        using var hinted = new BlazeFaceDetector();
        using var always = new BlazeFaceDetector(new BlazeFaceOptions { HintedFrom = 1024 });
        // One face of 192 px in a plain 640x480 photo: the look at 256 finds it and hints at nothing smaller,
        // so the look at 512, started beside it, is stopped and its boxes left out.
        using var large = new Mat(480, 640, MatType.CV_8UC3, new Scalar(120, 130, 140));
        using (var face = PastedFace(0, 192)) face.CopyTo(large[new Rect(200, 140, 192, 192)]);
        var truth = new FaceBox(200, 140, 192, 192);
        var (largeHinted, largeHintedLooks) = DetectCountingLooks(hinted, large);
        var (largeAlways, largeAlwaysLooks) = DetectCountingLooks(always, large);
        Assert.Equal(1, largeHintedLooks);
        Assert.Equal(2, largeAlwaysLooks);
        Assert.Equal(1, largeHinted.Count(b => b.IoU(truth) >= 0.4));
        Assert.Equal(largeAlways.Count, largeHinted.Count);

        // Faces of 44 px, too small for the look at 256: it hints at them, and the look at 512 finds them.
        using var small = FacesInRows(new Size(640, 480), count: 6, perRow: 3, side: 44, first: new Point(60, 120), step: new Size(200, 200), out var smallTruths);
        AssertHintedLooksFind(hinted, always, small, smallTruths, looks: 2, atLeast: 4);

        Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { HintedFrom = 256 }));
    }

    [SharedDataFact]
    public void The_look_at_1024_is_made_only_when_the_look_at_512_hints_at_smaller_faces()
    {
        // Two faces of 256 px in a 1920x1080 photo: the looks at 256 and 512 find them and hint at nothing smaller.
        // (The look at 512 is made: the look at 256, seeing them at 34 px, hints at them too.)
        using var large = new Mat(1080, 1920, MatType.CV_8UC3, new Scalar(120, 130, 140));
        var truths = new List<FaceBox>();
        foreach (var (index, x) in new[] { (0, 300), (2, 1200) })
        {
            using var face = PastedFace(index, 256);
            face.CopyTo(large[new Rect(x, 400, 256, 256)]);
            truths.Add(new FaceBox(x, 400, 256, 256));
        }
        // Twelve of 90 px, an eighteenth of its width: the look at 1024 is the one for them.
        using var small = FacesInRows(new Size(1920, 1080), count: 12, perRow: 6, side: 90, first: new Point(60, 200), step: new Size(300, 400), out var smallTruths);
        using var hinted = new BlazeFaceDetector();
        using var always = new BlazeFaceDetector(new BlazeFaceOptions { HintScore = 0 });
        var (largeHinted, largeHintedLooks) = DetectCountingLooks(hinted, large);
        var (largeAlways, largeAlwaysLooks) = DetectCountingLooks(always, large);
        Assert.Equal(3, largeAlwaysLooks);
        Assert.Equal(2, largeHintedLooks);
        Assert.All(truths, t => Assert.Contains(largeHinted, b => b.IoU(t) >= 0.4));
        Assert.Equal(largeAlways.Count, largeHinted.Count);

        AssertHintedLooksFind(hinted, always, small, smallTruths, looks: 3, atLeast: 8);

        Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { HintScore = 1 }));
    }

    [SharedDataFact]
    public void Looks_up_to_1024_find_the_faces_of_a_group_photo()
    {
        // 32 faces of 106 px (an eighteenth of the width) in a 1920x1080 photo: too small for looks up to 512.
        using var photo = new Mat(1080, 1920, MatType.CV_8UC3, new Scalar(120, 130, 140));
        var truths = new List<FaceBox>();
        for (var i = 0; i < 32; i++)
        {
            var (x, y) = (40 + i % 8 * 235, 60 + i / 8 * 250);
            using var face = Mat.FromPixelData(48, 48, MatType.CV_8UC1, FaceCanvas.Faces.Face(i).ToArray());
            using var big = face.Resize(new Size(106, 106), 0, 0, InterpolationFlags.Cubic);
            using var colour = big.CvtColor(ColorConversionCodes.GRAY2BGR);
            colour.CopyTo(photo[new Rect(x, y, 106, 106)]);
            truths.Add(new FaceBox(x, y, 106, 106));
        }
        int Found(BlazeFaceOptions options)
        {
            using var detector = new BlazeFaceDetector(options);
            var boxes = detector.Detect(photo);
            return truths.Count(t => boxes.Any(b => b.IoU(t) >= 0.4));
        }
        var byDefault = Found(new BlazeFaceOptions());
        var upTo512 = Found(new BlazeFaceOptions { MaxSide = 512 });
        Assert.True(byDefault >= 24 && byDefault >= upTo512 + 12, $"of 32 faces of 106 px: {byDefault} found by default, {upTo512} with looks up to 512");

        // fer predict does the same, and --max-look chooses the largest look.
        using var dir = new TempDir();
        var file = Path.Combine(dir.Path, "group.jpg");
        Assert.True(photo.SaveImage(file));
        int Printed(params string[] extra)
        {
            var cli = Cli.Run(["predict", file, "--format", "json", .. extra]);
            Assert.True(cli.ExitCode == 0, cli.Stderr);
            return JsonDocument.Parse(cli.Stdout).RootElement[0].GetProperty("faces").GetArrayLength();
        }
        var printedByDefault = Printed();
        var printedUpTo512 = Printed("--max-look", "512");
        Assert.Equal(printedByDefault, Printed("--every-look")); // its small faces hint at the look at 1024 anyway
        Assert.True(printedByDefault >= 24 && printedByDefault >= printedUpTo512 + 12, $"fer predict: {printedByDefault} faces by default, {printedUpTo512} with --max-look 512");
        var refused = Cli.Run("predict", file, "--max-look", "300");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("300", refused.Stderr);
    }

    [Theory]
    [InlineData(640, 480, 0.4, 256, 192, 288, 224)]
    [InlineData(640, 480, 0.8, 512, 384, 544, 416)]
    [InlineData(1920, 1080, 256.0 / 1920, 256, 144, 288, 192)]
    [InlineData(480, 640, 0.4, 192, 256, 224, 288)]
    [InlineData(100, 30, 2.56, 256, 77, 288, 128)]
    public void The_model_sees_the_image_scaled_framed_and_padded_to_whole_anchor_cells(int width, int height, double scale, int scaledW, int scaledH, int inputW, int inputH)
    {
        var (scaled, input) = BlazeFaceDetector.InputSize(width, height, scale);
        Assert.Equal(new Size(scaledW, scaledH), scaled);
        Assert.Equal(new Size(inputW, inputH), input);
    }

    [Fact]
    public void Anchors_follow_the_stride_16_grid_then_the_stride_32_grid_row_by_row()
    {
        // 256x192 input: a 16x12 grid with 2 anchors per cell (384), then an 8x6 grid with 6 per cell.
        const int fine = 16 * 12 * 2;
        Assert.Equal((8.0, 8.0), BlazeFaceDetector.AnchorCentre(0, fine, 256));
        Assert.Equal((8.0, 8.0), BlazeFaceDetector.AnchorCentre(1, fine, 256));
        Assert.Equal((24.0, 8.0), BlazeFaceDetector.AnchorCentre(2, fine, 256));
        Assert.Equal((8.0, 24.0), BlazeFaceDetector.AnchorCentre(32, fine, 256));
        Assert.Equal((248.0, 184.0), BlazeFaceDetector.AnchorCentre(fine - 1, fine, 256));
        Assert.Equal((16.0, 16.0), BlazeFaceDetector.AnchorCentre(fine + 5, fine, 256));
        Assert.Equal((48.0, 16.0), BlazeFaceDetector.AnchorCentre(fine + 6, fine, 256));
        Assert.Equal((240.0, 176.0), BlazeFaceDetector.AnchorCentre(fine + 8 * 6 * 6 - 1, fine, 256));
    }

    [Fact]
    public void Bad_settings_are_refused_by_name()
    {
        Assert.Contains("MinScore", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { MinScore = 1.5f })).Message);
        Assert.Contains("NmsIoU", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { NmsIoU = 0 })).Message);
        Assert.Contains("BoxScale", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { BoxScale = -1 })).Message);
        Assert.Contains("MaxSide", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { MaxSide = 100 })).Message);
        Assert.Contains("FullLookSide", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { FullLookSide = 100 })).Message);
        Assert.Contains("FullLookEvery", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { FullLookEvery = -1 })).Message);
        // NaN fails every comparison, so each range is checked as "not inside it".
        Assert.Contains("MinScore", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { MinScore = float.NaN })).Message);
        Assert.Contains("NmsIoU", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { NmsIoU = float.NaN })).Message);
        Assert.Contains("BoxScale", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { BoxScale = double.NaN })).Message);

        // The cascade's settings too, before OpenCV's assertion at the first photo.
        Assert.Contains("ScaleFactor", Assert.Throws<ArgumentOutOfRangeException>(() => new HaarFaceDetector(new HaarDetectorOptions { ScaleFactor = 1 })).Message);
        Assert.Contains("MinNeighbors", Assert.Throws<ArgumentOutOfRangeException>(() => new HaarFaceDetector(new HaarDetectorOptions { MinNeighbors = -1 })).Message);
        Assert.Contains("MinFaceFraction", Assert.Throws<ArgumentOutOfRangeException>(() => new HaarFaceDetector(new HaarDetectorOptions { MinFaceFraction = double.NaN })).Message);
        Assert.Contains("MaxDetectionSide", Assert.Throws<ArgumentOutOfRangeException>(() => new HaarFaceDetector(new HaarDetectorOptions { MaxDetectionSide = 0 })).Message);
    }

    /// <summary>
    /// Frames of PrivateTest face <paramref name="index"/> at <paramref name="side"/> px on a grey 640x480 canvas,
    /// moving 4 px right and 2 px down per frame, from frame <paramref name="appearsAt"/> (no face before).
    /// </summary>
    internal static IEnumerable<(Mat Frame, FaceBox? Truth)> MovingFace(int index, int side, int frames, int appearsAt = 0)
    {
        using var face = Mat.FromPixelData(48, 48, MatType.CV_8UC1, FaceCanvas.Faces.Face(index).ToArray());
        using var sized = face.Resize(new Size(side, side), 0, 0, side < 48 ? InterpolationFlags.Area : InterpolationFlags.Cubic);
        using var colour = sized.CvtColor(ColorConversionCodes.GRAY2BGR);
        var (x0, y0) = (40 + index * 67 % 400, 60 + index * 41 % 300);
        for (var f = 0; f < frames; f++)
        {
            var frame = new Mat(480, 640, MatType.CV_8UC3, new Scalar(120, 130, 140));
            if (f < appearsAt)
            {
                yield return (frame, null);
                continue;
            }
            var truth = new FaceBox(x0 + 4 * f, y0 + 2 * f, side, side);
            colour.CopyTo(frame[truth.ToRect()]);
            yield return (frame, truth);
        }
    }

    internal static bool FoundIn(IReadOnlyList<FaceBox> boxes, FaceBox? truth) => truth is { } t && boxes.Any(b => b.IoU(t) >= 0.4);

    [SharedDataFact]
    public void Following_a_video_keeps_the_small_faces_its_full_looks_find()
    {
        // 44 px faces in 640x480 frames: too small for the one look of the video settings; the first frame's full
        // look finds them, and the looks around them keep them in the frames after.
        using var detector = new BlazeFaceDetector(BlazeFaceOptions.Video);
        int alone = 0, followed = 0, frames = 0;
        for (var i = 0; i < 8; i++)
        {
            var follower = new FaceFollower(detector);
            foreach (var (frame, truth) in MovingFace(i, 44, 10))
            {
                using (frame)
                {
                    frames++;
                    if (FoundIn(detector.Detect(frame), truth)) alone++;
                    if (FoundIn(follower.Find(frame), truth)) followed++;
                }
            }
            Assert.Equal(10, follower.Frames);
        }
        Assert.True(followed >= 56 && followed >= alone + 30, $"of {frames} frames with a 44 px face: {followed} found by following, {alone} by each frame's own look");
    }

    [SharedDataFact]
    public void A_full_look_comes_every_FullLookEvery_frames()
    {
        // A 44 px face that appears in frame 1 is found at the next full look (frame 4), not before, and kept after.
        using var detector = new BlazeFaceDetector(BlazeFaceOptions.Video with { FullLookEvery = 4 });
        var follower = new FaceFollower(detector);
        var byFollower = new List<bool>();
        var byOwnLook = new List<bool>();
        foreach (var (frame, truth) in MovingFace(6, 44, 10, appearsAt: 1))
        {
            using (frame)
            {
                byOwnLook.Add(FoundIn(detector.Detect(frame), truth));
                byFollower.Add(FoundIn(follower.Find(frame), truth));
            }
        }
        Assert.False(byOwnLook.Any(found => found), "the frames' own look should miss this face in every frame");
        Assert.Equal(4, byFollower.IndexOf(true));
        Assert.True(byFollower.Skip(4).Count(found => found) >= 5, $"found in frames 4-9: {string.Join(",", byFollower.Skip(4))}");
    }

    [Fact]
    public void Other_detectors_see_each_frame_alone()
    {
        var boxes = new[] { new FaceBox(10, 10, 50, 50) };
        using var detector = new CountingDetector(boxes);
        var follower = new FaceFollower(detector);
        using var frame = new Mat(100, 100, MatType.CV_8UC3, Scalar.All(0));
        for (var i = 0; i < 3; i++) Assert.Equal(boxes, follower.Find(frame));
        Assert.Equal((3, 3), (detector.Calls, follower.Frames));
    }

    private sealed class CountingDetector(IReadOnlyList<FaceBox> boxes) : IFaceDetector
    {
        public int Calls { get; private set; }

        public IReadOnlyList<FaceBox> Detect(Mat image)
        {
            Calls++;
            return boxes;
        }

        public void Dispose()
        {
        }
    }

    [Fact]
    public void The_recognizer_uses_BlazeFace_unless_asked_for_the_cascade()
    {
        using var byDefault = FaceDetectors.Create(new RecognizerOptions().DetectorKind);
        Assert.IsType<BlazeFaceDetector>(byDefault);
        using var haar = FaceDetectors.Create(FaceDetectorKind.Haar);
        Assert.IsType<HaarFaceDetector>(haar);
    }
}
