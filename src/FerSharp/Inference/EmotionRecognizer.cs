using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;

using OpenCvSharp;

namespace FerSharp.Inference;

/// <summary>One face found in an image, with its expression.</summary>
public sealed record FaceEmotion(FaceBox Box, string Emotion, float Confidence, IReadOnlyDictionary<string, float> Probabilities)
{
    /// <summary>How the face was found: by the detector, by the detector on a padded copy, or the whole image taken as the face.</summary>
    public FaceFinding Finding { get; init; } = FaceFinding.Detected;
}

/// <summary>How a face's box came about.</summary>
public enum FaceFinding
{
    /// <summary>The face detector found it in the image.</summary>
    Detected,
    /// <summary>
    /// Nothing was found in the image, and the detector found it in a copy with a border added: a tight crop
    /// (cut at forehead and chin, as in FER2013) leaves the detector too little context around the face.
    /// </summary>
    DetectedWithBorder,
    /// <summary>Detection was skipped and the whole image classified as one face (a small image, or <see cref="FaceDetectionMode.Never"/>).</summary>
    WholeImage,
}

public enum FaceDetectionMode
{
    /// <summary>Detect faces, except in images small enough to be a face crop already.</summary>
    Auto,
    /// <summary>Always run the face detector.</summary>
    Always,
    /// <summary>Treat the whole image as one face (<c>--no-detect</c>).</summary>
    Never,
}

public sealed record RecognizerOptions
{
    public FaceDetectionMode Detection { get; init; } = FaceDetectionMode.Auto;
    /// <summary>In Auto mode, images with both sides at most this are classified whole.</summary>
    public int FaceCropMaxSide { get; init; } = 96;
    /// <summary>Detected boxes are grown by this fraction on each side before cropping (FER2013 crops include forehead and chin).</summary>
    public double Margin { get; init; } = 0.1;
    /// <summary>Images declaring more pixels than this are refused before decoding.</summary>
    public long MaxImagePixels { get; init; } = 50_000_000;
    /// <summary>
    /// When a photo shows no face, look again at a copy with a replicated border (<see cref="EmotionRecognizer.RetryBorder"/>)
    /// and map the boxes back: tight face crops larger than <see cref="FaceCropMaxSide"/> are then found too.
    /// </summary>
    public bool RetryWithBorder { get; init; } = true;
    /// <summary>The face detector (BlazeFace unless asked otherwise).</summary>
    public FaceDetectorKind DetectorKind { get; init; } = FaceDetectorKind.BlazeFace;
    /// <summary>Settings of the Haar cascade, when <see cref="DetectorKind"/> is <see cref="FaceDetectorKind.Haar"/>.</summary>
    public HaarDetectorOptions Detector { get; init; } = new();
    /// <summary>Settings of BlazeFace, when <see cref="DetectorKind"/> is <see cref="FaceDetectorKind.BlazeFace"/>.</summary>
    public BlazeFaceOptions BlazeFace { get; init; } = new();
    /// <summary>
    /// Test-time augmentation per face: <see cref="TtaMode.Crops"/> (10 views) is the most accurate and costs
    /// about ten times the per-face time, for photos rather than video; a flip-averaging package already
    /// averages each face with its mirror, so <see cref="TtaMode.Flip"/> adds nothing to it.
    /// </summary>
    public TtaMode Tta { get; init; } = TtaMode.None;

    /// <summary>
    /// Turn each face whose roll the detector found (BlazeFace's eye keypoints) so that its eyes are level
    /// before classifying it, as FER2013's faces mostly are.
    /// </summary>
    public bool LevelFaces { get; init; } = true;

    /// <summary>
    /// Threads of the classifier's network in one call. 1 (the default) suits a server, whose concurrent
    /// requests each take a core. A program that recognizes one photo or frame at a time (<c>fer predict</c>,
    /// <c>fer video</c>) gives it every core: a photo's faces are then classified in about half the time on 2
    /// cores (docs/BENCHMARKS.md, photo table). The detector is not affected: its looks at a photo already run
    /// side by side, one core each, which measured faster than each look on every core in turn.
    /// <see cref="EmotionRecognizer.Load"/> applies it unless given its own <see cref="ClassifierOptions"/>.
    /// </summary>
    public int ThreadsPerCall { get; init; } = 1;

    /// <summary>
    /// The face detectors' fast settings, for live video (<c>fer video</c>, the server's stream): BlazeFace on the
    /// whole frame at one scale, the cascade on frames downscaled to 480 px.
    /// </summary>
    public static RecognizerOptions Video { get; } = new() { Detector = HaarDetectorOptions.Video, BlazeFace = BlazeFaceOptions.Video };

    /// <summary>The largest <see cref="Margin"/>: a box grown by its own size on every side is mostly background.</summary>
    public const double MaxMargin = 1;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        // "Not inside the range", so that NaN is refused as well.
        if (!(Margin is >= 0 and <= MaxMargin))
        {
            throw new ArgumentException($"margin (--margin) must be a fraction of the face box from 0 to {MaxMargin}, got {Margin.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
        }
        if (FaceCropMaxSide < 0) throw new ArgumentException($"FaceCropMaxSide must be 0 or more, got {FaceCropMaxSide}");
        if (MaxImagePixels < 1) throw new ArgumentException($"MaxImagePixels must be at least 1, got {MaxImagePixels}");
        if (!Enum.IsDefined(Tta)) throw new ArgumentException($"unknown test-time augmentation {Tta}");
        if (ThreadsPerCall is < 1 or > 256) throw new ArgumentException($"ThreadsPerCall must be from 1 to 256, got {ThreadsPerCall}");
    }
}

/// <summary>
/// Finds every face in a photo and says its expression:
/// <code>using var fer = EmotionRecognizer.Load(); var faces = fer.Recognize("photo.jpg");</code>
/// Thread-safe: concurrent callers share the model and the detector.
/// </summary>
public sealed class EmotionRecognizer : IDisposable
{
    private readonly bool _ownsDetector;

    public EmotionRecognizer(IFaceClassifier model, IFaceDetector? detector = null, RecognizerOptions? options = null)
    {
        Model = model ?? throw new ArgumentNullException(nameof(model));
        Options = options ?? new RecognizerOptions();
        Options.Validate();
        _ownsDetector = detector == null;
        Detector = detector ?? FaceDetectors.Create(Options.DetectorKind, Options.Detector, Options.BlazeFace);
    }

    /// <summary>Smaller images cannot hold a recognizable face.</summary>
    public const int MinImageSide = 8;

    /// <summary>The classifier of each face found (owned: disposed with the recognizer).</summary>
    public IFaceClassifier Model { get; }
    public IFaceDetector Detector { get; }
    public RecognizerOptions Options { get; }

    /// <summary>
    /// Loads a model package on ONNX Runtime (or the engine <paramref name="classifier"/> names), or with no path
    /// the default shipped model (see <see cref="ModelCatalog"/>).
    /// </summary>
    public static EmotionRecognizer Load(string? modelPath = null, RecognizerOptions? options = null, ClassifierOptions? classifier = null)
    {
        options?.Validate(); // before the model's load
        var path = modelPath ?? ModelCatalog.DefaultModelPath()
            ?? throw new FileNotFoundException("no model given and no shipped model found under models/ (set FERSHARP_MODELS or pass a path)");
        var model = OnnxFaceClassifier.Load(path, classifier ?? new ClassifierOptions { Threads = options?.ThreadsPerCall ?? 1 });
        try
        {
            return new EmotionRecognizer(model, null, options);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    public IReadOnlyList<FaceEmotion> Recognize(string imagePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(imagePath);
        if (Directory.Exists(imagePath)) throw new ArgumentException($"{imagePath}: is a folder, not an image");
        if (!File.Exists(imagePath)) throw new FileNotFoundException($"{imagePath}: no such file", imagePath);
        return Recognize(File.ReadAllBytes(imagePath));
    }

    public IReadOnlyList<FaceEmotion> Recognize(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        return Recognize(ms.ToArray());
    }

    public IReadOnlyList<FaceEmotion> Recognize(byte[] encodedImage)
    {
        using var image = Decode(encodedImage, Options.MaxImagePixels);
        return Recognize(image);
    }

    /// <summary>Decodes an encoded image (BGR), refusing empty, undecodable and oversized input.</summary>
    public static Mat Decode(byte[] encodedImage, long maxPixels = 50_000_000)
    {
        ArgumentNullException.ThrowIfNull(encodedImage);
        ImageSafety.EnsureDecodable(encodedImage, maxPixels);
        var image = Cv2.ImDecode(encodedImage, ImreadModes.Color);
        if (image.Empty())
        {
            image.Dispose();
            throw new InvalidDataException("not a readable image (unknown format or corrupt data)");
        }
        return image;
    }

    /// <summary>Faces in a BGR, BGRA or grayscale image.</summary>
    public IReadOnlyList<FaceEmotion> Recognize(Mat image) => Recognize(image, Options.Tta);

    /// <summary>As <see cref="Recognize(Mat)"/> with another test-time augmentation than the options' (e.g. per request).</summary>
    public IReadOnlyList<FaceEmotion> Recognize(Mat image, TtaMode tta)
    {
        EnsureRecognizable(image);
        var (boxes, finding) = FindFacesInPhoto(image);
        return Classify(image, boxes, tta, finding);
    }

    /// <summary>
    /// Faces in the next frame of a video, found by <paramref name="follower"/> (which knows the frames before; its
    /// detector may differ from <see cref="Detector"/>, as the server's stream's does) and classified by this recognizer.
    /// </summary>
    public IReadOnlyList<FaceEmotion> Recognize(Mat frame, FaceFollower follower) => Recognize(frame, follower, Options.Tta);

    /// <summary>As <see cref="Recognize(Mat, FaceFollower)"/> with another test-time augmentation than the options' (the server's stream keeps one view).</summary>
    public IReadOnlyList<FaceEmotion> Recognize(Mat frame, FaceFollower follower, TtaMode tta)
    {
        ArgumentNullException.ThrowIfNull(follower);
        EnsureRecognizable(frame);
        var (boxes, finding) = FindFaces(frame, follower.Find);
        return Classify(frame, boxes, tta, finding);
    }

    /// <summary>A follower of this recognizer's detector, for the frames of one video (<see cref="Recognize(Mat, FaceFollower)"/>).</summary>
    public FaceFollower FollowFaces() => new(Detector);

    private static void EnsureRecognizable(Mat image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Empty()) throw new ArgumentException("the image is empty");
        if (image.Width < MinImageSide || image.Height < MinImageSide)
        {
            throw new InvalidDataException($"image is {image.Width}x{image.Height} pixels, too small to hold a face (minimum {MinImageSide}x{MinImageSide})");
        }
    }

    /// <summary>The face boxes <see cref="Recognize(Mat)"/> would classify.</summary>
    public IReadOnlyList<FaceBox> FindFaces(Mat image) => FindFacesInPhoto(image).Boxes;

    /// <summary>
    /// The border added on each side, as a share of the longer side, when a photo shows no face: enough for
    /// a face that fills the frame to be seen with some surroundings, as the detector was trained.
    /// </summary>
    public const double RetryBorder = 0.3;

    /// <summary>
    /// The faces <see cref="Recognize(Mat)"/> would classify and how they were found, without classifying them:
    /// with <see cref="Classify(Mat, IReadOnlyList{FaceBox}, TtaMode, FaceFinding)"/>, the two steps of a
    /// recognition, for callers that time or batch them separately.
    /// </summary>
    public (IReadOnlyList<FaceBox> Boxes, FaceFinding Finding) Locate(Mat image)
    {
        EnsureRecognizable(image);
        return FindFacesInPhoto(image);
    }

    private (IReadOnlyList<FaceBox> Boxes, FaceFinding Finding) FindFacesInPhoto(Mat image)
    {
        var (boxes, finding) = FindFaces(image, Detector.Detect);
        if (boxes.Count > 0 || finding != FaceFinding.Detected || !Options.RetryWithBorder) return (boxes, finding);
        var border = (int)Math.Ceiling(Math.Max(image.Width, image.Height) * RetryBorder);
        using var padded = image.CopyMakeBorder(border, border, border, border, BorderTypes.Replicate);
        var found = Detector.Detect(padded)
            .Select(b => ClipTo(b with { X = b.X - border, Y = b.Y - border }, image.Width, image.Height))
            .Where(b => b.Width >= MinImageSide && b.Height >= MinImageSide)
            .ToList();
        return (found, FaceFinding.DetectedWithBorder);
    }

    private static FaceBox ClipTo(FaceBox box, int width, int height)
    {
        var x0 = Math.Clamp(box.X, 0, width);
        var y0 = Math.Clamp(box.Y, 0, height);
        var x1 = Math.Clamp(box.X + box.Width, 0, width);
        var y1 = Math.Clamp(box.Y + box.Height, 0, height);
        return box with { X = x0, Y = y0, Width = x1 - x0, Height = y1 - y0 };
    }

    private (IReadOnlyList<FaceBox> Boxes, FaceFinding Finding) FindFaces(Mat image, Func<Mat, IReadOnlyList<FaceBox>> detect)
    {
        ArgumentNullException.ThrowIfNull(image);
        var whole = new FaceBox(0, 0, image.Width, image.Height);
        return Options.Detection switch
        {
            FaceDetectionMode.Never => ([whole], FaceFinding.WholeImage),
            FaceDetectionMode.Auto when image.Width <= Options.FaceCropMaxSide && image.Height <= Options.FaceCropMaxSide => ([whole], FaceFinding.WholeImage),
            _ => (detect(image), FaceFinding.Detected),
        };
    }

    /// <summary>Classifies the given boxes of <paramref name="image"/> in one batch.</summary>
    public IReadOnlyList<FaceEmotion> Classify(Mat image, IReadOnlyList<FaceBox> boxes) => Classify(image, boxes, Options.Tta);

    /// <summary>Classifies the given boxes of <paramref name="image"/> in one batch, averaging the views of <paramref name="tta"/>.</summary>
    public IReadOnlyList<FaceEmotion> Classify(Mat image, IReadOnlyList<FaceBox> boxes, TtaMode tta) => Classify(image, boxes, tta, FaceFinding.Detected);

    /// <summary>Classifies the given boxes in one batch; each result says it was found by <paramref name="finding"/>.</summary>
    public IReadOnlyList<FaceEmotion> Classify(Mat image, IReadOnlyList<FaceBox> boxes, TtaMode tta, FaceFinding finding)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(boxes);
        if (boxes.Count == 0) return [];
        var whole = boxes.Count == 1 && boxes[0] == new FaceBox(0, 0, image.Width, image.Height);
        var crops = boxes.Select(b => CropFace(image, b, whole ? 0 : Options.Margin, Options.LevelFaces)).ToList();
        var probabilities = Model.PredictProbabilities(crops, tta);
        var classes = Model.ClassNames;
        var results = new List<FaceEmotion>(boxes.Count);
        for (var i = 0; i < boxes.Count; i++)
        {
            var p = probabilities[i];
            var best = 0;
            for (var c = 1; c < p.Length; c++) if (p[c] > p[best]) best = c;
            var dict = new Dictionary<string, float>(classes.Count);
            for (var c = 0; c < classes.Count; c++) dict[classes[c]] = p[c];
            results.Add(new FaceEmotion(boxes[i], classes[best], p[best], dict) { Finding = finding });
        }
        return results;
    }

    /// <summary>Rolls smaller than this are left as they are: FER2013's own faces lean that much.</summary>
    public const double MinLevelledRoll = 3;

    /// <summary>
    /// 48x48 grayscale bytes of a box grown by <paramref name="margin"/>, clipped to the image; with
    /// <paramref name="level"/>, a face whose <see cref="FaceBox.Roll"/> is known is first turned about its
    /// centre so that its eyes are level, as FER2013's faces mostly are (the image's edge repeated where the
    /// turned box leaves it).
    /// </summary>
    public static byte[] CropFace(Mat image, FaceBox box, double margin, bool level = false)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (level && box.Roll is { } roll && Math.Abs(roll) >= MinLevelledRoll) return CropLevelled(image, box, margin, roll);
        var dx = (int)Math.Round(box.Width * margin);
        var dy = (int)Math.Round(box.Height * margin);
        var x0 = Math.Clamp(box.X - dx, 0, image.Width - 1);
        var y0 = Math.Clamp(box.Y - dy, 0, image.Height - 1);
        var x1 = Math.Clamp(box.X + box.Width + dx, x0 + 1, image.Width);
        var y1 = Math.Clamp(box.Y + box.Height + dy, y0 + 1, image.Height);
        using var roi = new Mat(image, new Rect(x0, y0, x1 - x0, y1 - y0));
        return FaceImages.ToFaceBytes(roi);
    }

    private static byte[] CropLevelled(Mat image, FaceBox box, double margin, double roll)
    {
        var width = Math.Max(1, (int)Math.Round(box.Width * (1 + 2 * margin)));
        var height = Math.Max(1, (int)Math.Round(box.Height * (1 + 2 * margin)));
        var centre = new Point2f(box.X + box.Width / 2f, box.Y + box.Height / 2f);
        // Turning by the roll (OpenCV: positive is anticlockwise as seen) levels the eyes; the translation then
        // puts the grown box's corner at the origin, so the warp writes the crop alone.
        using var turn = Cv2.GetRotationMatrix2D(centre, roll, 1);
        turn.Set(0, 2, turn.At<double>(0, 2) - (centre.X - width / 2.0));
        turn.Set(1, 2, turn.At<double>(1, 2) - (centre.Y - height / 2.0));
        using var levelled = new Mat();
        Cv2.WarpAffine(image, levelled, turn, new Size(width, height), InterpolationFlags.Linear, BorderTypes.Replicate);
        return FaceImages.ToFaceBytes(levelled);
    }

    public void Dispose()
    {
        if (_ownsDetector) Detector.Dispose();
        Model.Dispose();
    }
}
