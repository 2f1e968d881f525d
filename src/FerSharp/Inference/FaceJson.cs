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
        return new
        {
            box = new { x = face.Box.X, y = face.Box.Y, width = face.Box.Width, height = face.Box.Height },
            emotion = face.Emotion,
            confidence = Math.Round(face.Confidence, 4),
            probabilities = face.Probabilities.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 4)),
        };
    }

    public static List<object> Of(IEnumerable<FaceEmotion> faces) => faces.Select(Of).ToList();
}
