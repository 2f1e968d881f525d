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
        using var face = Mat.FromPixelData(48, 48, MatType.CV_8UC1, FaceCanvas.Faces.Face(index).ToArray());
        using var big = face.Resize(new Size(side, side), 0, 0, InterpolationFlags.Cubic);
        using var colour = big.CvtColor(ColorConversionCodes.GRAY2BGR);
        using var turn = Cv2.GetRotationMatrix2D(new Point2f(side / 2f, side / 2f), angle, 1);
        using var turned = colour.WarpAffine(turn, colour.Size(), InterpolationFlags.Linear, BorderTypes.Replicate);
        turned.CopyTo(canvas[new Rect(x, y, side, side)]);
        return (canvas, new FaceBox(x, y, side, side));
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
    public void Boxes_land_on_the_face_in_wide_and_tall_images_anywhere_in_the_frame()
    {
        using var detector = new BlazeFaceDetector();
        // The letterbox puts the image in the square's top-left corner; faces far right or far down test the way back.
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

    [Fact]
    public void Bad_settings_are_refused_by_name()
    {
        Assert.Contains("MinScore", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { MinScore = 1.5f })).Message);
        Assert.Contains("NmsIoU", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { NmsIoU = 0 })).Message);
        Assert.Contains("BoxScale", Assert.Throws<ArgumentOutOfRangeException>(() => new BlazeFaceDetector(new BlazeFaceOptions { BoxScale = -1 })).Message);
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
