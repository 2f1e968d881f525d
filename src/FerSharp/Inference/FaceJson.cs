namespace FerSharp.Inference;

/// <summary>
/// The one JSON shape of a recognized face, shared by <c>fer predict --format json</c> and the HTTP API:
/// <c>{"box":{"x","y","width","height"},"emotion","confidence","probabilities":{class: p},"found","detector_score"}</c>.
/// <c>found</c> says how the face was found (<c>detected</c>, <c>detected-with-border</c>, <c>whole-image</c>);
/// <c>detector_score</c> is the detector's confidence, null where it has none.
/// </summary>
public static class FaceJson
{
    public static object Of(FaceEmotion face)
    {
        ArgumentNullException.ThrowIfNull(face);
        return new { box = BoxOf(face.Box), emotion = face.Emotion, confidence = Math.Round(face.Confidence, 4), probabilities = ProbabilitiesOf(face), found = FoundName(face.Finding), detector_score = ScoreOf(face.Box) };
    }

    /// <summary>How a face was found, as written in every output: detected, detected-with-border, whole-image.</summary>
    public static string FoundName(FaceFinding finding) => finding switch
    {
        FaceFinding.DetectedWithBorder => "detected-with-border",
        FaceFinding.WholeImage => "whole-image",
        _ => "detected",
    };

    /// <summary>The detector's score, rounded as written; null where the detector gives none.</summary>
    public static double? ScoreOf(FaceBox box) => box.Score is { } score ? Math.Round(score, 4) : null;

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
