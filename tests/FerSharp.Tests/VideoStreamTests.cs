using FerSharp.Inference;

using OpenCvSharp;

namespace FerSharp.Tests;

/// <summary>Frame-by-frame video recognition (<see cref="VideoStream"/>) on clips made in code; no faces needed.</summary>
[Collection("torch")]
public class VideoStreamTests
{
    private static string BlankClip(TempDir dir, int frames, double fps = 10)
    {
        var path = dir.File("blank.avi");
        using var writer = new VideoWriter(path, FourCC.MJPG, fps, new Size(320, 240));
        Assert.True(writer.IsOpened());
        using var frame = new Mat(240, 320, MatType.CV_8UC3, new Scalar(90, 90, 90));
        for (var i = 0; i < frames; i++)
        {
            // Each frame differs a little, as a real video's do.
            frame.SetTo(new Scalar(80 + i, 90, 100));
            writer.Write(frame);
        }
        return path;
    }

    [Fact]
    public void Frames_come_one_by_one_with_their_number_time_and_whether_they_were_analysed()
    {
        using var dir = new TempDir();
        var clip = BlankClip(dir, 12);
        using var recognizer = EmotionRecognizer.Load();
        using var video = VideoStream.Open(recognizer, clip, new VideoOptions { Every = 3 });
        Assert.Equal(12, video.FrameCount);
        Assert.Equal(10, video.SourceFps, 3);
        var seen = new List<(int Index, double Time, bool Analyzed, int Faces, Size Size)>();
        foreach (var frame in video.Frames())
        {
            seen.Add((frame.Index, frame.TimeSeconds, frame.Analyzed, frame.Faces.Count, frame.Image.Size()));
            // The stream counts as it goes, so a live caller can show progress.
            Assert.Equal(frame.Index + 1, video.FramesRead);
        }
        Assert.Equal(Enumerable.Range(0, 12), seen.Select(f => f.Index));
        Assert.Equal(seen.Select(f => f.Index / 10.0), seen.Select(f => f.Time));
        Assert.Equal(seen.Select(f => f.Index % 3 == 0), seen.Select(f => f.Analyzed));
        Assert.All(seen, f => Assert.Equal((0, new Size(320, 240)), (f.Faces, f.Size)));
        var summary = video.Summary();
        Assert.Equal((12, 4, 0, 0), (summary.FramesRead, summary.FramesAnalyzed, summary.FaceDetections, summary.Tracks));
        Assert.Throws<InvalidOperationException>(() => video.Frames().ToList());
    }

    [Fact]
    public void A_caller_stops_a_stream_by_cancelling_breaking_off_or_a_frame_limit()
    {
        using var dir = new TempDir();
        var clip = BlankClip(dir, 12);
        using var recognizer = EmotionRecognizer.Load();

        using var cancel = new CancellationTokenSource();
        var summary = VideoRecognition.Process(recognizer, clip, cancellationToken: cancel.Token, onFrame: frame =>
        {
            if (frame.Index == 4) cancel.Cancel();
        });
        Assert.Equal(5, summary.FramesRead);

        using (var video = VideoStream.Open(recognizer, clip))
        {
            Assert.Equal(3, video.Frames().Take(3).Count());
            Assert.Equal(3, video.Summary().FramesRead);
        }

        var frames = new List<int>();
        var progress = new List<(int, int?)>();
        var limited = VideoRecognition.Process(recognizer, clip, new VideoOptions { MaxFrames = 7 }, (n, total) => progress.Add((n, total)), onFrame: frame => frames.Add(frame.Index));
        Assert.Equal(Enumerable.Range(0, 7), frames);
        Assert.Equal(7, limited.FramesRead);
        // Progress counts towards the limit, not the file's 12 frames.
        Assert.Equal(Enumerable.Range(1, 7).Select(n => (n, (int?)7)), progress);

        // Bad settings are refused before the source is read, naming the option.
        Assert.Contains("--every", Assert.Throws<ArgumentException>(() => VideoStream.Open(recognizer, clip, new VideoOptions { Every = 0 })).Message);
        Assert.Contains("--max-frames", Assert.Throws<ArgumentException>(() => VideoStream.Open(recognizer, clip, new VideoOptions { MaxFrames = -1 })).Message);
        Assert.Contains("--smooth", Assert.Throws<ArgumentException>(() => VideoStream.Open(recognizer, clip, new VideoOptions { Smoothing = 1.5 })).Message);
        Assert.Throws<FileNotFoundException>(() => VideoStream.Open(recognizer, dir.File("missing.mp4")));
        Assert.Contains("is a folder", Assert.Throws<ArgumentException>(() => VideoStream.Open(recognizer, dir.Path)).Message);
        foreach (var url in new[] { "rtsp://camera.local/stream", "http://127.0.0.1:9/clip.avi" })
        {
            Assert.Contains("network streams", Assert.Throws<ArgumentException>(() => VideoStream.Open(recognizer, url)).Message);
        }
    }

    [SharedDataFact]
    public void A_video_follows_a_small_face_its_frames_own_looks_miss()
    {
        // A 44 px face moving through 20 frames: the video settings' one look per frame misses it; their full look
        // every tenth frame finds it, and each frame looks for it again around where it was.
        using var dir = new TempDir();
        var clip = dir.File("small-face.avi");
        var truths = new List<FaceBox?>();
        using (var writer = new VideoWriter(clip, FourCC.MJPG, 10, new Size(640, 480)))
        {
            Assert.True(writer.IsOpened());
            foreach (var (frame, truth) in BlazeFaceTests.MovingFace(6, 44, 20))
            {
                using (frame) writer.Write(frame);
                truths.Add(truth);
            }
        }
        int FramesWithAFace(BlazeFaceOptions blazeFace)
        {
            using var recognizer = EmotionRecognizer.Load(null, RecognizerOptions.Video with { BlazeFace = blazeFace });
            using var video = VideoStream.Open(recognizer, clip, new VideoOptions());
            return video.Frames().Count(frame => BlazeFaceTests.FoundIn(frame.Faces.Select(f => f.Face.Box).ToList(), truths[frame.Index]));
        }
        var followed = FramesWithAFace(BlazeFaceOptions.Video);
        var alone = FramesWithAFace(BlazeFaceOptions.Video with { FullLookEvery = 0 });
        Assert.True(followed >= 16 && alone <= 4, $"of 20 frames, {followed} had the face with full looks, {alone} without");
    }

    [Fact]
    public void Fer_video_streams_json_lines_and_refuses_a_window_without_a_display()
    {
        using var dir = new TempDir();
        var clip = BlankClip(dir, 9);
        var result = Cli.Run("video", clip, "--jsonl", "--every", "2");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // Only the analysed frames' lines are on stdout; the summary is on stderr.
        Assert.Equal(5, lines.Length);
        var parsed = lines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([0, 2, 4, 6, 8], parsed.Select(p => p.GetProperty("frame").GetInt32()));
        Assert.Equal(0.4, parsed[2].GetProperty("time_s").GetDouble(), 3);
        Assert.All(parsed, p => Assert.Equal(0, p.GetProperty("faces").GetArrayLength()));
        Assert.Contains("9 frames (5 analysed)", result.Stderr);

        var noDisplay = Dotnet.Run(AppContext.BaseDirectory, [Path.Combine(AppContext.BaseDirectory, "fer.dll"), "video", clip, "--show"],
            new Dictionary<string, string?> { ["NO_COLOR"] = "1", ["DISPLAY"] = null, ["WAYLAND_DISPLAY"] = null });
        Assert.Equal(2, noDisplay.ExitCode);
        Assert.Contains("--show needs a graphical display", noDisplay.Stderr);
    }
}
