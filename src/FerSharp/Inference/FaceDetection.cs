using OpenCvSharp;

namespace FerSharp.Inference;

/// <summary>A face rectangle in image pixels.</summary>
public readonly record struct FaceBox(int X, int Y, int Width, int Height)
{
    /// <summary>
    /// The detector's confidence that this is a face, 0..1 (BlazeFace's score); null where there is none: the
    /// Haar cascade gives no score, and a whole image taken as the face was not detected.
    /// </summary>
    public float? Score { get; init; }

    /// <summary>
    /// The face's turn in the image plane, in degrees: the angle of the line between its eyes, positive when the
    /// eye on the image's right is lower (the face turned clockwise as seen). Null where the detector does not
    /// locate eyes (the Haar cascade, a whole image taken as the face).
    /// </summary>
    public double? Roll { get; init; }

    public int Area => Math.Max(0, Width) * Math.Max(0, Height);

    /// <summary>Intersection over union: 1 for identical boxes, 0 for disjoint ones.</summary>
    public double IoU(FaceBox other)
    {
        var x0 = Math.Max(X, other.X);
        var y0 = Math.Max(Y, other.Y);
        var x1 = Math.Min(X + Width, other.X + other.Width);
        var y1 = Math.Min(Y + Height, other.Y + other.Height);
        var intersection = Math.Max(0, x1 - x0) * Math.Max(0, y1 - y0);
        var union = Area + other.Area - intersection;
        return union <= 0 ? 0 : (double)intersection / union;
    }

    public Rect ToRect() => new(X, Y, Width, Height);
}

/// <summary>Finds faces in an image. Implementations must be safe to call from several threads.</summary>
public interface IFaceDetector : IDisposable
{
    IReadOnlyList<FaceBox> Detect(Mat image);
}

/// <summary>Which face detector finds the faces.</summary>
public enum FaceDetectorKind
{
    /// <summary>
    /// MediaPipe's BlazeFace network (<see cref="BlazeFaceDetector"/>): finds more faces than the cascade, tilted ones
    /// too, with far fewer false detections; photos take about twice the cascade's time, video frames the same
    /// (docs/decisions/0007-blazeface-detector.md).
    /// </summary>
    BlazeFace,

    /// <summary>OpenCV's Haar frontal-face cascade (<see cref="HaarFaceDetector"/>): no network, fewer faces found, upright ones only.</summary>
    Haar,
}

/// <summary>Makes the detector a <see cref="FaceDetectorKind"/> names.</summary>
public static class FaceDetectors
{
    public static IFaceDetector Create(FaceDetectorKind kind, HaarDetectorOptions? haar = null, BlazeFaceOptions? blazeFace = null) => kind switch
    {
        FaceDetectorKind.BlazeFace => new BlazeFaceDetector(blazeFace),
        FaceDetectorKind.Haar => new HaarFaceDetector(haar),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown face detector"),
    };
}

/// <summary>Tuning of <see cref="HaarFaceDetector"/>.</summary>
public sealed record HaarDetectorOptions
{
    public const string DefaultCascadePath = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";

    /// <summary>Cascade file; $FERSHARP_HAAR_CASCADE overrides the Debian <c>opencv-data</c> default.</summary>
    public string CascadePath { get; init; } = Environment.GetEnvironmentVariable("FERSHARP_HAAR_CASCADE") ?? DefaultCascadePath;
    public double ScaleFactor { get; init; } = 1.05;
    public int MinNeighbors { get; init; } = 4;
    /// <summary>Smallest face side as a fraction of the image's shorter side (and at least 24 px).</summary>
    public double MinFaceFraction { get; init; } = 0.04;
    /// <summary>Images whose longer side exceeds this are downscaled for detection (boxes are scaled back).</summary>
    public int MaxDetectionSide { get; init; } = 960;

    /// <summary>
    /// Live video: a coarser scale pyramid on frames downscaled to 480 px, about 3x faster than the photo
    /// settings for a little recall (bench/run "detector" section). Faces under 24 px at 480 px, i.e. smaller
    /// than 5% of the frame's longer side, are not looked for.
    /// </summary>
    public static HaarDetectorOptions Video { get; } = new() { ScaleFactor = 1.1, MaxDetectionSide = 480 };
}

/// <summary>OpenCV's Haar frontal-face cascade, with histogram equalisation and downscaling of large images.</summary>
public sealed class HaarFaceDetector : IFaceDetector
{
    private readonly CascadeClassifier _cascade;
    private readonly HaarDetectorOptions _options;
    private readonly object _gate = new(); // CascadeClassifier is not thread-safe

    public HaarFaceDetector(HaarDetectorOptions? options = null)
    {
        _options = options ?? new HaarDetectorOptions();
        // Refused here rather than by OpenCV's assertion at the first photo (a scale step of 1 never ends).
        if (!(_options.ScaleFactor > 1 && double.IsFinite(_options.ScaleFactor))) throw new ArgumentOutOfRangeException(nameof(options), _options.ScaleFactor, "ScaleFactor must be above 1");
        if (_options.MinNeighbors < 0) throw new ArgumentOutOfRangeException(nameof(options), _options.MinNeighbors, "MinNeighbors must be 0 or more");
        if (!(_options.MinFaceFraction is >= 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(options), _options.MinFaceFraction, "MinFaceFraction must lie in [0, 1]");
        if (_options.MaxDetectionSide < 24) throw new ArgumentOutOfRangeException(nameof(options), _options.MaxDetectionSide, "MaxDetectionSide must be at least 24 (the smallest face looked for)");
        if (!File.Exists(_options.CascadePath))
        {
            throw new FileNotFoundException(
                $"{_options.CascadePath}: face detector cascade not found; install the Debian package 'opencv-data' (apt-get install opencv-data) or set FERSHARP_HAAR_CASCADE",
                _options.CascadePath);
        }
        _cascade = new CascadeClassifier(_options.CascadePath);
        if (_cascade.Empty())
        {
            _cascade.Dispose();
            throw new InvalidDataException($"{_options.CascadePath}: not a valid OpenCV cascade file");
        }
    }

    public IReadOnlyList<FaceBox> Detect(Mat image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Empty()) return [];
        using var gray = image.Channels() switch
        {
            1 => image.Clone(),
            4 => image.CvtColor(ColorConversionCodes.BGRA2GRAY),
            _ => image.CvtColor(ColorConversionCodes.BGR2GRAY),
        };
        var longer = Math.Max(gray.Width, gray.Height);
        var scale = longer > _options.MaxDetectionSide ? (double)_options.MaxDetectionSide / longer : 1.0;
        using var small = scale < 1 ? gray.Resize(new Size(), scale, scale, InterpolationFlags.Area) : gray.Clone();
        Cv2.EqualizeHist(small, small);
        var minSide = Math.Max(24, (int)(Math.Min(small.Width, small.Height) * _options.MinFaceFraction));
        Rect[] found;
        lock (_gate)
        {
            found = _cascade.DetectMultiScale(small, _options.ScaleFactor, _options.MinNeighbors, HaarDetectionTypes.ScaleImage, new Size(minSide, minSide));
        }
        return found
            .Select(r => new FaceBox((int)Math.Round(r.X / scale), (int)Math.Round(r.Y / scale), (int)Math.Round(r.Width / scale), (int)Math.Round(r.Height / scale)))
            .OrderBy(b => b.X).ThenBy(b => b.Y)
            .ToList();
    }

    public void Dispose() => _cascade.Dispose();
}
