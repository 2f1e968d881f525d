using OpenCvSharp;

namespace FerSharp.Inference;

/// <summary>
/// Finds the faces of one video's frames, one frame after another. With BlazeFace each frame gets the detector's
/// usual looks, every <see cref="BlazeFaceOptions.FullLookEvery"/>th frame looks for smaller faces as well, and a
/// face of the frame before that a frame's looks miss is looked for again around where it was: a small face found
/// on one of those frames stays found in the frames between, and a face the usual looks find only now and then
/// does not flicker. Other detectors see
/// each frame alone.
/// </summary>
/// <remarks>Holds the last frame's faces: one follower per video or stream, called from one thread at a time.</remarks>
public sealed class FaceFollower
{
    // A followed face that a frame's looks miss is looked for again in the next frames too, this many at most:
    // a look that misses a face once mostly finds it in the next frame.
    private const int MaxMissedFrames = 2;

    private List<(FaceBox Box, int Missed)> _followed = [];

    public FaceFollower(IFaceDetector detector)
    {
        Detector = detector ?? throw new ArgumentNullException(nameof(detector));
    }

    public IFaceDetector Detector { get; }

    /// <summary>Frames seen so far.</summary>
    public int Frames { get; private set; }

    /// <summary>The faces of the next frame of the video.</summary>
    public IReadOnlyList<FaceBox> Find(Mat frame)
    {
        ArgumentNullException.ThrowIfNull(frame);
        var index = Frames++;
        if (Detector is not BlazeFaceDetector blazeFace) return Detector.Detect(frame);
        var every = blazeFace.Options.FullLookEvery;
        var found = blazeFace.DetectFollowing(frame, every > 0 && index % every == 0, _followed.Select(f => f.Box).ToList());
        var followed = found.Select(b => (b, 0)).ToList();
        foreach (var (box, missed) in _followed)
        {
            if (missed < MaxMissedFrames && !found.Any(b => b.IoU(box) >= BlazeFaceDetector.SameFaceIoU)) followed.Add((box, missed + 1));
        }
        _followed = followed;
        return found;
    }
}
