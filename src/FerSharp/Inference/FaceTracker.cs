namespace FerSharp.Inference;

/// <summary>A face followed across frames, with its expression probabilities smoothed over time.</summary>
public sealed record TrackedFace(int Id, FaceEmotion Face);

/// <summary>
/// Associates detections across frames by greedy IoU matching and smooths each face's probabilities with
/// an exponential moving average, so labels do not flicker from frame to frame.
/// </summary>
public sealed class FaceTracker
{
    private sealed class Track
    {
        public required int Id { get; init; }
        public required FaceBox Box { get; set; }
        public required float[] Probabilities { get; set; }
        public int Missed { get; set; }
    }

    private readonly List<Track> _tracks = [];
    private readonly IReadOnlyList<string> _classes;
    private int _nextId = 1;

    /// <param name="classes">Class names, in the order of the probability vectors.</param>
    /// <param name="smoothing">Weight of the past in the moving average (0 = no smoothing, 0.9 = very smooth).</param>
    /// <param name="minIoU">Overlap needed to call two boxes the same face.</param>
    /// <param name="maxMissed">Frames a face may go undetected before its track ends.</param>
    public FaceTracker(IReadOnlyList<string> classes, double smoothing = 0.6, double minIoU = 0.3, int maxMissed = 10)
    {
        ArgumentNullException.ThrowIfNull(classes);
        if (!(smoothing is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(smoothing), "smoothing must be in [0, 1)");
        _classes = classes;
        Smoothing = smoothing;
        MinIoU = minIoU;
        MaxMissed = maxMissed;
    }

    public double Smoothing { get; }
    public double MinIoU { get; }
    public int MaxMissed { get; }
    public int TracksStarted => _nextId - 1;

    public IReadOnlyList<TrackedFace> Update(IReadOnlyList<FaceEmotion> detections)
    {
        ArgumentNullException.ThrowIfNull(detections);
        var pairs = new List<(double IoU, int Track, int Detection)>();
        for (var t = 0; t < _tracks.Count; t++)
            for (var d = 0; d < detections.Count; d++)
            {
                var iou = _tracks[t].Box.IoU(detections[d].Box);
                if (iou >= MinIoU) pairs.Add((iou, t, d));
            }
        var trackFor = new int[detections.Count];
        Array.Fill(trackFor, -1);
        var usedTracks = new HashSet<int>();
        foreach (var (_, t, d) in pairs.OrderByDescending(p => p.IoU))
        {
            if (trackFor[d] >= 0 || usedTracks.Contains(t)) continue;
            trackFor[d] = t;
            usedTracks.Add(t);
        }
        var result = new List<TrackedFace>(detections.Count);
        for (var d = 0; d < detections.Count; d++)
        {
            var fresh = _classes.Select(c => detections[d].Probabilities[c]).ToArray();
            Track track;
            if (trackFor[d] >= 0)
            {
                track = _tracks[trackFor[d]];
                for (var c = 0; c < fresh.Length; c++)
                {
                    track.Probabilities[c] = (float)(Smoothing * track.Probabilities[c] + (1 - Smoothing) * fresh[c]);
                }
                track.Box = detections[d].Box;
                track.Missed = 0;
            }
            else
            {
                track = new Track { Id = _nextId++, Box = detections[d].Box, Probabilities = fresh };
                _tracks.Add(track);
                usedTracks.Add(_tracks.Count - 1);
            }
            result.Add(new TrackedFace(track.Id, ToFace(track)));
        }
        for (var t = _tracks.Count - 1; t >= 0; t--)
        {
            if (usedTracks.Contains(t)) continue;
            if (++_tracks[t].Missed > MaxMissed) _tracks.RemoveAt(t);
        }
        return result;
    }

    private FaceEmotion ToFace(Track track)
    {
        var best = 0;
        for (var c = 1; c < track.Probabilities.Length; c++) if (track.Probabilities[c] > track.Probabilities[best]) best = c;
        var dict = new Dictionary<string, float>(_classes.Count);
        for (var c = 0; c < _classes.Count; c++) dict[_classes[c]] = track.Probabilities[c];
        return new FaceEmotion(track.Box, _classes[best], track.Probabilities[best], dict);
    }
}
