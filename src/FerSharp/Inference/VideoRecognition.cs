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
    public double FramesPerSecond => FramesRead / Math.Max(1e-9, Seconds);
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
            return camera;
        }
        if (!File.Exists(source)) throw new FileNotFoundException($"{source}: no such file", source);
        var capture = new VideoCapture(source);
        if (!capture.IsOpened())
        {
            capture.Dispose();
            throw new InvalidDataException($"{source}: cannot be opened as a video (unsupported or corrupt)");
        }
        return capture;
    }

    public static VideoSummary Process(EmotionRecognizer recognizer, string source, VideoOptions? options = null,
        Action<int, int?>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recognizer);
        options ??= new VideoOptions();
        if (options.Every < 1) throw new ArgumentException("--every must be at least 1");
        using var capture = Open(source);
        var sourceFps = capture.Fps is > 0 and < 1000 ? capture.Fps : 25;
        int? total = capture.FrameCount > 0 ? capture.FrameCount : null;
        var tracker = new FaceTracker(recognizer.Model.ClassNames, options.Smoothing);
        VideoWriter? writer = null;
        var tmpVideo = options.OutputPath == null ? null : TempSibling(options.OutputPath);
        var csv = options.CsvPath == null ? null : new StringBuilder(CsvHeader(recognizer.Model.ClassNames));
        var watch = Stopwatch.StartNew();
        int read = 0, analyzed = 0, detections = 0;
        IReadOnlyList<TrackedFace> last = [];
        try
        {
            using var frame = new Mat();
            while (!cancellationToken.IsCancellationRequested && (options.MaxFrames == 0 || read < options.MaxFrames))
            {
                if (!capture.Read(frame) || frame.Empty()) break;
                var index = read++;
                if (index % options.Every == 0)
                {
                    last = tracker.Update(recognizer.Recognize(frame));
                    analyzed++;
                    detections += last.Count;
                    csv?.Append(CsvRows(index, index / sourceFps, last, recognizer.Model.ClassNames));
                }
                if (tmpVideo != null)
                {
                    writer ??= OpenWriter(tmpVideo, options.OutputPath!, sourceFps, frame.Size());
                    Annotator.Draw(frame, last.Select(t => t.Face).ToList(), last.Select(t => t.Id).ToList());
                    writer.Write(frame);
                }
                progress?.Invoke(read, total);
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
        if (read == 0) throw new InvalidDataException($"{source}: no frames could be read");
        return new VideoSummary(read, analyzed, detections, tracker.TracksStarted, watch.Elapsed.TotalSeconds, sourceFps);
    }

    private static string TempSibling(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        // keep the extension: OpenCV picks the container from it
        return Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileNameWithoutExtension(full)}.{Guid.NewGuid():N}.tmp{Path.GetExtension(full)}");
    }

    private static VideoWriter OpenWriter(string tmp, string target, double fps, Size size)
    {
        var fourcc = Path.GetExtension(target).Equals(".avi", StringComparison.OrdinalIgnoreCase) ? FourCC.MJPG : FourCC.MP4V;
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
