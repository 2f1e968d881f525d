namespace FerSharp.Inference;

/// <summary>
/// The one JSON shape of a recognized face, shared by <c>fer predict --format json</c> and the HTTP API:
/// <c>{"box":{"x","y","width","height"},"emotion","confidence","probabilities":{class: p}}</c>.
/// </summary>
public static class FaceJson
{
    public static object Of(FaceEmotion face)
    {
        ArgumentNullException.ThrowIfNull(face);
        return new { box = BoxOf(face.Box), emotion = face.Emotion, confidence = Math.Round(face.Confidence, 4), probabilities = ProbabilitiesOf(face) };
    }

    /// <summary>A face tracked through a video: the same shape with its track id first (<c>fer video --jsonl</c>).</summary>
    public static object Of(TrackedFace tracked)
    {
        ArgumentNullException.ThrowIfNull(tracked);
        var face = tracked.Face;
        return new { id = tracked.Id, box = BoxOf(face.Box), emotion = face.Emotion, confidence = Math.Round(face.Confidence, 4), probabilities = ProbabilitiesOf(face) };
    }

    private static object BoxOf(FaceBox box) => new { x = box.X, y = box.Y, width = box.Width, height = box.Height };

    private static Dictionary<string, double> ProbabilitiesOf(FaceEmotion face) =>
        face.Probabilities.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 4));

    public static List<object> Of(IEnumerable<FaceEmotion> faces) => faces.Select(Of).ToList();
}
