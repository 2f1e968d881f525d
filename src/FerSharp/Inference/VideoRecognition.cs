using System.Diagnostics;
using System.Globalization;
using System.Text;

using OpenCvSharp;

namespace FerSharp.Inference;

public sealed record VideoOptions
{
    /// <summary>Analyse every Nth frame; frames in between reuse the last result.</summary>
    public int Every { get; init; } = 1;
    /// <summary>Weight of the past in each face's probability average (0 = none).</summary>
    public double Smoothing { get; init; } = 0.6;
    /// <summary>Annotated copy of the video (.mp4 or .avi).</summary>
    public string? OutputPath { get; init; }
    /// <summary>One row per face per analysed frame.</summary>
    public string? CsvPath { get; init; }
    /// <summary>Stop after this many frames (0 = all; a camera runs until cancelled).</summary>
    public int MaxFrames { get; init; }
}

public sealed record VideoSummary(int FramesRead, int FramesAnalyzed, int FaceDetections, int Tracks, double Seconds, double SourceFps)
{
    /// <summary>Wall time until the first frame was recognized: opening the source and the first calls' warm-up.</summary>
    public double FirstFrameSeconds { get; init; }

    /// <summary>Frames per second after the first frame, whose warm-up would otherwise dominate a short run.</summary>
    public double FramesPerSecond => FramesRead > 1 && Seconds > FirstFrameSeconds
        ? (FramesRead - 1) / (Seconds - FirstFrameSeconds)
        : FramesRead / Math.Max(1e-9, Seconds);
}

/// <summary>Runs the recognizer over a video file or camera (<c>camera:N</c>) through OpenCV's FFmpeg/V4L backends.</summary>
public static class VideoRecognition
{
    public static VideoCapture Open(string source)
    {
        ArgumentException.ThrowIfNullOrEmpty(source);
        if (source.StartsWith("camera:", StringComparison.OrdinalIgnoreCase))
        {
            if (!int.TryParse(source.AsSpan(7), NumberStyles.None, CultureInfo.InvariantCulture, out var index))
            {
                throw new ArgumentException($"'{source}': expected camera:N with N a camera number, e.g. camera:0");
            }
            var camera = new VideoCapture(index);
            if (!camera.IsOpened())
            {
                camera.Dispose();
                throw new IOException($"camera {index} could not be opened (no device /dev/video{index}, or it is busy)");
            }
            // One frame in the driver's queue: when recognition is slower than the camera, a deeper queue hands
            // out frames several recognitions old, and the labels lag behind the face. Backends that cannot
            // change it ignore the request.
            camera.Set(VideoCaptureProperties.BufferSize, 1);
            return camera;
        }
        if (IsNetworkUrl(source))
        {
            // OpenCV's bundled FFmpeg has no network protocols: even an http:// URL of a served file fails to open.
            throw new ArgumentException("network streams (rtsp://, http://, …) cannot be read by the bundled OpenCV; record the stream to a file first, or use camera:N for a local camera");
        }
        if (Directory.Exists(source)) throw new ArgumentException($"{source}: is a folder; give a video file or camera:N");
        if (!File.Exists(source)) throw new FileNotFoundException($"{source}: no such file", source);
        var capture = new VideoCapture(source);
        if (!capture.IsOpened())
        {
            capture.Dispose();
            throw new InvalidDataException($"{source}: cannot be opened as a video (unsupported or corrupt)");
        }
        return capture;
    }

    /// <summary>
    /// Runs the whole video through the recognizer, writing the annotated copy and CSV the options ask for
    /// (each atomically, when the run ends). <paramref name="onFrame"/> sees every frame as it is read, for a
    /// live view; its <see cref="VideoFrame.Image"/> is already annotated when an annotated copy is written.
    /// </summary>
    public static VideoSummary Process(EmotionRecognizer recognizer, string source, VideoOptions? options = null,
        Action<int, int?>? progress = null, CancellationToken cancellationToken = default, Action<VideoFrame>? onFrame = null)
    {
        ArgumentNullException.ThrowIfNull(recognizer);
        options ??= new VideoOptions();
        using var video = VideoStream.Open(recognizer, source, options);
        VideoWriter? writer = null;
        var tmpVideo = options.OutputPath == null ? null : TempSibling(options.OutputPath);
        var csv = options.CsvPath == null ? null : new StringBuilder(CsvHeader(recognizer.Model.ClassNames));
        // What progress counts towards: the frame limit, when it comes before the end.
        int? total = options.MaxFrames > 0 ? Math.Min(video.FrameCount ?? options.MaxFrames, options.MaxFrames) : video.FrameCount;
        try
        {
            foreach (var frame in video.Frames(cancellationToken))
            {
                if (frame.Analyzed) csv?.Append(CsvRows(frame.Index, frame.TimeSeconds, frame.Faces, recognizer.Model.ClassNames));
                if (tmpVideo != null)
                {
                    writer ??= OpenWriter(tmpVideo, options.OutputPath!, video.SourceFps, frame.Image.Size());
                    Annotator.Draw(frame.Image, frame.Faces.Select(t => t.Face).ToList(), frame.Faces.Select(t => t.Id).ToList());
                    writer.Write(frame.Image);
                }
                progress?.Invoke(frame.Index + 1, total);
                onFrame?.Invoke(frame);
            }
            writer?.Release();
            writer?.Dispose();
            writer = null;
            if (tmpVideo != null && File.Exists(tmpVideo)) File.Move(tmpVideo, options.OutputPath!, overwrite: true);
            if (csv != null) AtomicFile.WriteAllText(options.CsvPath!, csv.ToString());
        }
        finally
        {
            writer?.Dispose();
            if (tmpVideo != null && File.Exists(tmpVideo)) File.Delete(tmpVideo);
        }
        return video.Summary();
    }

    private static readonly HashSet<string> NetworkSchemes = new(StringComparer.OrdinalIgnoreCase)
    {
        "rtsp", "rtsps", "rtmp", "rtmps", "rtp", "srt", "udp", "tcp", "http", "https", "ftp", "mms",
    };

    private static bool IsNetworkUrl(string source) =>
        Uri.TryCreate(source, UriKind.Absolute, out var uri) && NetworkSchemes.Contains(uri.Scheme) && !File.Exists(source);

    private static string TempSibling(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        // keep the extension: OpenCV picks the container from it
        return Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileNameWithoutExtension(full)}.{Guid.NewGuid():N}.tmp{Path.GetExtension(full)}");
    }

    private static VideoWriter OpenWriter(string tmp, string target, double fps, Size size)
    {
        // 'mp4v' in lower case is MPEG-4's tag in an MP4 file: the upper-case MP4V made FFmpeg print a fallback warning on every file.
        FourCC fourcc = Path.GetExtension(target).Equals(".avi", StringComparison.OrdinalIgnoreCase) ? FourCC.FromFourChars('M', 'J', 'P', 'G') : FourCC.FromFourChars('m', 'p', '4', 'v');
        var writer = new VideoWriter(tmp, fourcc, fps, size);
        if (!writer.IsOpened())
        {
            writer.Dispose();
            throw new IOException($"{target}: cannot write a video here (use .mp4 or .avi)");
        }
        return writer;
    }

    public static string CsvHeader(IReadOnlyList<string> classes) =>
        "frame,time_s,face_id,x,y,width,height,emotion,confidence," + string.Join(',', classes) + "\n";

    private static string CsvRows(int frame, double time, IReadOnlyList<TrackedFace> faces, IReadOnlyList<string> classes)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        foreach (var t in faces)
        {
            var b = t.Face.Box;
            sb.Append(inv, $"{frame},{time:F3},{t.Id},{b.X},{b.Y},{b.Width},{b.Height},{t.Face.Emotion},{t.Face.Confidence:F4}");
            foreach (var c in classes) sb.Append(inv, $",{t.Face.Probabilities[c]:F4}");
            sb.Append('\n');
        }
        return sb.ToString();
    }
}

/// <summary>
/// One frame of a video as it was read: its number (from 0), its time in the source, whether the recognizer
/// ran on it (<see cref="VideoOptions.Every"/>; frames in between repeat the last faces), and the tracked faces.
/// <see cref="Image"/> is the decoded frame, reused for the next one: clone it to keep it.
/// </summary>
public sealed record VideoFrame(int Index, double TimeSeconds, bool Analyzed, IReadOnlyList<TrackedFace> Faces, Mat Image);

/// <summary>
/// A video file or camera (<c>camera:N</c>) recognized frame by frame as it is read, for callers that act on
/// each frame in real time: <c>foreach (var frame in video.Frames(ct))</c>. Faces keep their ids across frames
/// (<see cref="FaceTracker"/>) and their probabilities are smoothed over time as the options say.
/// </summary>
public sealed class VideoStream : IDisposable
{
    /// <summary>The most weight the past may have in a face's probabilities; nearer 1 a face would hardly change.</summary>
    public const double MaxSmoothing = 0.95;

    private readonly EmotionRecognizer _recognizer;
    private readonly VideoOptions _options;
    private readonly VideoCapture _capture;
    private readonly FaceTracker _tracker;
    private readonly FaceFollower _follower;
    private readonly Stopwatch _watch = new();
    private double _firstFrameSeconds;
    private bool _started;

    private VideoStream(EmotionRecognizer recognizer, string source, VideoOptions options, VideoCapture capture)
    {
        _recognizer = recognizer;
        _options = options;
        _capture = capture;
        Source = source;
        // Some containers and most cameras report no rate or a nonsense one.
        SourceFps = capture.Fps is > 0 and < 1000 ? capture.Fps : 25;
        FrameCount = capture.FrameCount > 0 ? capture.FrameCount : null;
        _tracker = new FaceTracker(recognizer.Model.ClassNames, options.Smoothing);
        _follower = recognizer.FollowFaces();
    }

    /// <summary>Opens the source; fails at once, naming it, when it cannot be read.</summary>
    public static VideoStream Open(EmotionRecognizer recognizer, string source, VideoOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(recognizer);
        options ??= new VideoOptions();
        if (options.Every < 1) throw new ArgumentException("--every must be at least 1");
        if (options.MaxFrames < 0) throw new ArgumentException("--max-frames must be 0 (all) or more");
        if (!(options.Smoothing is >= 0 and <= MaxSmoothing)) throw new ArgumentException($"--smooth must be from 0 (off) to {MaxSmoothing}");
        return new VideoStream(recognizer, source, options, VideoRecognition.Open(source));
    }

    public string Source { get; }

    /// <summary>Frames per second of the source (25 when it does not say).</summary>
    public double SourceFps { get; }

    /// <summary>Frames in a file, when its container says; null for cameras and streams.</summary>
    public int? FrameCount { get; }

    public int FramesRead { get; private set; }

    public int FramesAnalyzed { get; private set; }

    public int FaceDetections { get; private set; }

    /// <summary>Reads, recognizes and yields frames until the source ends, the options' frame limit, or cancellation. Once per stream.</summary>
    public IEnumerable<VideoFrame> Frames(CancellationToken cancellationToken = default)
    {
        if (_started) throw new InvalidOperationException("a video stream's frames can be read once");
        _started = true;
        return Read(cancellationToken);
    }

    private IEnumerable<VideoFrame> Read(CancellationToken cancellationToken)
    {
        _watch.Start();
        try
        {
            using var image = new Mat();
            IReadOnlyList<TrackedFace> last = [];
            while (!cancellationToken.IsCancellationRequested && (_options.MaxFrames == 0 || FramesRead < _options.MaxFrames))
            {
                if (!_capture.Read(image) || image.Empty()) break;
                var index = FramesRead++;
                var analyzed = index % _options.Every == 0;
                if (analyzed)
                {
                    last = _tracker.Update(_recognizer.Recognize(image, _follower));
                    FramesAnalyzed++;
                    FaceDetections += last.Count;
                }
                if (index == 0) _firstFrameSeconds = _watch.Elapsed.TotalSeconds;
                yield return new VideoFrame(index, index / SourceFps, analyzed, last, image);
            }
            if (FramesRead == 0 && !cancellationToken.IsCancellationRequested)
            {
                throw new InvalidDataException($"{Source}: no frames could be read");
            }
        }
        finally
        {
            // Also when the caller stops early: the summary's rate covers only the reading.
            _watch.Stop();
        }
    }

    /// <summary>What was read so far and how fast (frames read per second of wall time while reading).</summary>
    public VideoSummary Summary() =>
        new(FramesRead, FramesAnalyzed, FaceDetections, _tracker.TracksStarted, _watch.Elapsed.TotalSeconds, SourceFps) { FirstFrameSeconds = _firstFrameSeconds };

    public void Dispose() => _capture.Dispose();
}
