using System.Diagnostics;
using System.Globalization;

using FerSharp.Data;
using FerSharp.Inference;

using OpenCvSharp;

namespace FerSharp.Bench;

internal static class Repo
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "FerSharp.sln"))) return dir.FullName;
            }
            return Directory.GetCurrentDirectory();
        }
    }
}

internal sealed record Stats(double Median, double Min, double Max)
{
    public static Stats Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return new Stats(Math.Round(Percentile(sorted, 50), 2), Math.Round(sorted[0], 2), Math.Round(sorted[^1], 2));
    }

    public static double Percentile(double[] sorted, double p)
    {
        var rank = p / 100 * (sorted.Length - 1);
        var lo = (int)Math.Floor(rank);
        var hi = Math.Min(sorted.Length - 1, lo + 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Median:N1} (min {Min:N1}, max {Max:N1})");
}

internal static class Timing
{
    /// <summary>Seconds per call of <paramref name="action"/>, <paramref name="runs"/> times after <paramref name="warmup"/> untimed calls.</summary>
    public static double[] Measure(int runs, int warmup, Action action)
    {
        for (var i = 0; i < warmup; i++) action();
        var times = new double[runs];
        for (var i = 0; i < runs; i++)
        {
            var watch = Stopwatch.StartNew();
            action();
            times[i] = watch.Elapsed.TotalSeconds;
        }
        return times;
    }
}

internal sealed record MachineInfo(string Cpu, int Cores, double GHz, int FlopsPerCycle, double PeakGflops, string TorchSharp, string Dotnet)
{
    public static MachineInfo Read()
    {
        var cpuinfo = File.Exists("/proc/cpuinfo") ? File.ReadAllLines("/proc/cpuinfo") : [];
        string Field(string name) => cpuinfo.FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "";
        var flags = Field("flags").Split(' ');
        var mhz = double.TryParse(Field("cpu MHz"), NumberStyles.Float, CultureInfo.InvariantCulture, out var m) ? m : 2000;
        // fp32 FLOPs per cycle per core: two FMA units x vector lanes x 2 (multiply + add)
        var perCycle = flags.Contains("avx512f") ? 64 : flags.Contains("fma") && flags.Contains("avx2") ? 32 : flags.Contains("avx") ? 16 : 8;
        var cores = Environment.ProcessorCount;
        return new MachineInfo(Field("model name"), cores, Math.Round(mhz / 1000, 2), perCycle, Math.Round(cores * mhz / 1000 * perCycle, 1),
            typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "?", Environment.Version.ToString());
    }
}

/// <summary>Test scenes built at run time from FER2013 faces scaled up onto a canvas (never saved).</summary>
internal static class Scenes
{
    /// <summary>
    /// FER2013 test faces that the Haar detector finds when pasted alone into a 640x480 scene; the photo,
    /// video and server figures are meant to time faces that are found, and some 48x48 faces are not.
    /// </summary>
    public static IReadOnlyList<byte[]> DetectableFaces(FaceDataset faces, EmotionRecognizer recognizer, int count)
    {
        var found = new List<byte[]>();
        for (var k = 0; k < faces.Count && found.Count < count; k++)
        {
            var pixels = faces.Face(k).ToArray();
            using var scene = Build([pixels], 640, 480, 1);
            if (recognizer.Recognize(scene).Count == 1) found.Add(pixels);
        }
        return found.Count == count ? found : throw new InvalidOperationException($"only {found.Count} of the first {faces.Count} faces are detected alone; need {count}");
    }

    public static Mat Build(IReadOnlyList<byte[]> faces, int width, int height, int count, int shift = 0)
    {
        var canvas = new Mat(height, width, MatType.CV_8UC3, new Scalar(120, 130, 140));
        var side = Math.Min(height / 2, width / (count + 1)) * 4 / 5;
        for (var k = 0; k < count; k++)
        {
            using var colour = Enlarged(faces[k % faces.Count], side);
            var x = Math.Min(width - side - 1, 20 + k * (width / count) + shift % 10);
            colour.CopyTo(canvas[new Rect(x, (height - side) / 2, side, side)]);
        }
        return canvas;
    }

    /// <summary>A group photo: <paramref name="count"/> faces of <paramref name="side"/> px in rows across a 1920x1080 grey image, and where each is.</summary>
    public static GroupPhoto Group(FaceDataset faces, int count, int side)
    {
        var image = new Mat(1080, 1920, MatType.CV_8UC3, new Scalar(120, 130, 140));
        var truths = new List<FaceBox>();
        var perRow = 8;
        for (var k = 0; k < count; k++)
        {
            var (x, y) = (40 + k % perRow * (1840 / perRow), 60 + k / perRow * (960 / ((count + perRow - 1) / perRow)));
            using var colour = Enlarged(faces.Face(k).ToArray(), side);
            colour.CopyTo(image[new Rect(x, y, side, side)]);
            truths.Add(new FaceBox(x, y, side, side));
        }
        return new GroupPhoto(image, truths);
    }

    /// <summary>A 48x48 grayscale face scaled to <paramref name="side"/> pixels (bicubic) as a BGR image, to paste into a scene.</summary>
    public static Mat Enlarged(byte[] pixels, int side)
    {
        using var face = Mat.FromPixelData(48, 48, MatType.CV_8UC1, pixels);
        using var big = face.Resize(new Size(side, side), 0, 0, InterpolationFlags.Cubic);
        return big.CvtColor(ColorConversionCodes.GRAY2BGR);
    }
}

/// <summary>
/// Detector speed against recall: 640x480 scenes each holding one FER2013 test face at a known, random
/// place, size and tilt, so the detector and its settings can be chosen by measurement; and the boxes each
/// finds in a folder of photos without faces (or with a few), for its false detections.
/// </summary>
internal static class DetectorStudy
{
    public sealed record Variant(string Name, Func<IFaceDetector> Create);

    public sealed record SceneSet(string Name, IReadOnlyList<(Mat Scene, FaceBox Truth)> Scenes);

    public sealed record Result(string Variant, IReadOnlyList<string> Found, int OtherBoxes, double MedianMs, double P90Ms);

    /// <summary>Scenes with one face of <paramref name="minSide"/>-<paramref name="maxSide"/> px, turned by up to <paramref name="maxAngle"/> degrees.</summary>
    public static SceneSet Scenes(string name, FaceDataset faces, int count, int minSide, int maxSide, double maxAngle)
    {
        var scenes = new List<(Mat, FaceBox)>();
        for (var i = 0; i < count; i++)
        {
            var random = new Random(i);
            var side = random.Next(minSide, maxSide + 1);
            var x = random.Next(0, 640 - side);
            var y = random.Next(0, 480 - side);
            var canvas = new Mat(480, 640, MatType.CV_8UC3, new Scalar(90 + random.Next(80), 90 + random.Next(80), 90 + random.Next(80)));
            using var colour = Bench.Scenes.Enlarged(faces.Face(i % faces.Count).ToArray(), side);
            var angle = (random.NextDouble() * 2 - 1) * maxAngle;
            using var turn = Cv2.GetRotationMatrix2D(new Point2f(side / 2f, side / 2f), angle, 1);
            using var turned = colour.WarpAffine(turn, colour.Size(), InterpolationFlags.Linear, BorderTypes.Replicate);
            turned.CopyTo(canvas[new Rect(x, y, side, side)]);
            scenes.Add((canvas, new FaceBox(x, y, side, side)));
        }
        return new SceneSet(name, scenes);
    }

    /// <summary>Found faces per scene set; times are those of the first set.</summary>
    public static Result Run(Variant variant, IReadOnlyList<SceneSet> sets)
    {
        using var detector = variant.Create();
        detector.Detect(sets[0].Scenes[0].Scene); // warm-up
        var ms = new List<double>();
        var found = new List<string>();
        var other = 0;
        foreach (var set in sets)
        {
            var hits = 0;
            foreach (var (scene, truth) in set.Scenes)
            {
                var watch = Stopwatch.StartNew();
                var boxes = detector.Detect(scene);
                if (set == sets[0]) ms.Add(watch.Elapsed.TotalMilliseconds);
                if (boxes.Any(b => b.IoU(truth) >= 0.4)) hits++;
                other += boxes.Count(b => b.IoU(truth) < 0.4);
            }
            found.Add($"{hits}/{set.Scenes.Count}");
        }
        ms.Sort();
        return new Result(variant.Name, found, other, Math.Round(Stats.Percentile([.. ms], 50), 2), Math.Round(Stats.Percentile([.. ms], 90), 2));
    }

    /// <summary>Clips of 640x480 frames, each with one face of a size in a range moving in a straight line, bouncing off the edges.</summary>
    public sealed record ClipSet(string Name, FaceDataset Faces, int Count, int Frames, int MinSide, int MaxSide)
    {
        /// <summary>The frames of clip <paramref name="clip"/>, made as they are read (a clip set would not fit in memory).</summary>
        public IEnumerable<(Mat Frame, FaceBox Truth)> Clip(int clip)
        {
            var random = new Random(clip);
            var side = random.Next(MinSide, MaxSide + 1);
            double x = random.Next(0, 640 - side), y = random.Next(0, 480 - side);
            double vx = random.NextDouble() * 8 - 4, vy = random.NextDouble() * 6 - 3;
            var background = new Scalar(90 + random.Next(80), 90 + random.Next(80), 90 + random.Next(80));
            using var colour = Bench.Scenes.Enlarged(Faces.Face(clip % Faces.Count).ToArray(), side);
            for (var f = 0; f < Frames; f++)
            {
                if (x + vx < 0 || x + vx > 640 - side) vx = -vx;
                if (y + vy < 0 || y + vy > 480 - side) vy = -vy;
                x += vx;
                y += vy;
                var frame = new Mat(480, 640, MatType.CV_8UC3, background);
                var truth = new FaceBox((int)x, (int)y, side, side);
                colour.CopyTo(frame[truth.ToRect()]);
                yield return (frame, truth);
            }
        }
    }

    public sealed record ClipResult(string Variant, IReadOnlyList<string> Found, int OtherBoxes, double MedianMs, double MeanMs, double P90Ms);

    /// <summary>
    /// Frames with their face found per clip set, each clip read by a new <see cref="FaceFollower"/> when
    /// <paramref name="follow"/> (as <c>fer video</c> does) or frame by frame alone; times over all frames.
    /// </summary>
    public static ClipResult RunClips(Variant variant, bool follow, IReadOnlyList<ClipSet> sets)
    {
        using var detector = variant.Create();
        using (var warm = new Mat(480, 640, MatType.CV_8UC3, Scalar.All(100))) detector.Detect(warm);
        var ms = new List<double>();
        var found = new List<string>();
        var other = 0;
        foreach (var set in sets)
        {
            int hits = 0, frames = 0;
            for (var clip = 0; clip < set.Count; clip++)
            {
                var follower = new FaceFollower(detector);
                foreach (var (frame, truth) in set.Clip(clip))
                {
                    using (frame)
                    {
                        var watch = Stopwatch.StartNew();
                        var boxes = follow ? follower.Find(frame) : detector.Detect(frame);
                        ms.Add(watch.Elapsed.TotalMilliseconds);
                        frames++;
                        if (boxes.Any(b => b.IoU(truth) >= 0.4)) hits++;
                        other += boxes.Count(b => b.IoU(truth) < 0.4);
                    }
                }
            }
            found.Add($"{hits}/{frames}");
        }
        ms.Sort();
        double[] sorted = [.. ms];
        return new ClipResult(variant.Name, found, other, Math.Round(Stats.Percentile(sorted, 50), 2), Math.Round(ms.Average(), 2), Math.Round(Stats.Percentile(sorted, 90), 2));
    }

    /// <summary>Boxes found in each image of a folder (.jpg, .png), by file name.</summary>
    public static SortedDictionary<string, int> CountInFolder(IFaceDetector detector, string folder)
    {
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(folder).Where(f => f.EndsWith(".jpg", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".png", StringComparison.OrdinalIgnoreCase)))
        {
            using var image = Cv2.ImRead(file);
            if (!image.Empty()) counts[Path.GetFileName(file)] = detector.Detect(image).Count;
        }
        return counts;
    }
}

/// <summary>A generated group photo and the box of each face pasted into it.</summary>
internal sealed record GroupPhoto(Mat Image, IReadOnlyList<FaceBox> Truths) : IDisposable
{
    public void Dispose() => Image.Dispose();
}
