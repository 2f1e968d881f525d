using System.Text.Json.Serialization;

using FerSharp.Inference;

namespace FerSharp.Server;

/// <summary>A face's box in image pixels.</summary>
public sealed record ApiBox(
    [property: JsonPropertyName("x")] int X,
    [property: JsonPropertyName("y")] int Y,
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("height")] int Height);

/// <summary>One face: where, its most likely expression, every class's probability, and how it was found.</summary>
public sealed record ApiFace(
    [property: JsonPropertyName("box")] ApiBox Box,
    [property: JsonPropertyName("emotion")] string Emotion,
    [property: JsonPropertyName("confidence")] double Confidence,
    [property: JsonPropertyName("probabilities")] IReadOnlyDictionary<string, double> Probabilities,
    [property: JsonPropertyName("found")] string Found,
    [property: JsonPropertyName("detector_score")] double? DetectorScore)
{
    public static ApiFace Of(FaceEmotion face)
    {
        ArgumentNullException.ThrowIfNull(face);
        return new ApiFace(new ApiBox(face.Box.X, face.Box.Y, face.Box.Width, face.Box.Height), face.Emotion, Math.Round(face.Confidence, 4),
            face.Probabilities.ToDictionary(kv => kv.Key, kv => Math.Round(kv.Value, 4)), FaceJson.FoundName(face.Finding), FaceJson.ScoreOf(face.Box));
    }
}

/// <summary>The answer to <c>POST /api/v1/recognize</c>.</summary>
public sealed record ApiRecognition(
    [property: JsonPropertyName("faces")] IReadOnlyList<ApiFace> Faces,
    [property: JsonPropertyName("width")] int Width,
    [property: JsonPropertyName("height")] int Height,
    [property: JsonPropertyName("model")] string Model,
    [property: JsonPropertyName("elapsed_ms")] double ElapsedMs);

/// <summary>Every error response: one sentence saying what was wrong.</summary>
public sealed record ApiError([property: JsonPropertyName("error")] string Error);
