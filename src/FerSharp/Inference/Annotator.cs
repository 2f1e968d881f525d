using OpenCvSharp;

namespace FerSharp.Inference;

/// <summary>Draws boxes, labels and probability bars onto an image (in place).</summary>
public static class Annotator
{
    private static readonly Dictionary<string, Scalar> Colours = new(StringComparer.OrdinalIgnoreCase)
    {
        ["angry"] = new Scalar(40, 40, 220),
        ["disgust"] = new Scalar(40, 140, 40),
        ["fear"] = new Scalar(160, 60, 160),
        ["happy"] = new Scalar(40, 200, 240),
        ["sad"] = new Scalar(200, 120, 40),
        ["surprise"] = new Scalar(30, 150, 255),
        ["neutral"] = new Scalar(170, 170, 170),
        ["contempt"] = new Scalar(110, 80, 60),
    };

    public static Scalar ColourOf(string emotion) => Colours.TryGetValue(emotion, out var c) ? c : new Scalar(0, 220, 0);

    public static void Draw(Mat image, IReadOnlyList<FaceEmotion> faces, IReadOnlyList<int>? trackIds = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(faces);
        var scale = Math.Clamp(Math.Min(image.Width, image.Height) / 700.0, 0.45, 2.0);
        var thickness = Math.Max(1, (int)Math.Round(2 * scale));
        for (var i = 0; i < faces.Count; i++)
        {
            var face = faces[i];
            var colour = ColourOf(face.Emotion);
            Cv2.Rectangle(image, face.Box.ToRect(), colour, thickness, LineTypes.AntiAlias);
            var label = $"{(trackIds != null ? $"#{trackIds[i]} " : "")}{face.Emotion} {face.Confidence:P0}";
            var size = Cv2.GetTextSize(label, HersheyFonts.HersheySimplex, 0.6 * scale, thickness, out var baseline);
            var top = Math.Max(0, face.Box.Y - size.Height - baseline - 4);
            Cv2.Rectangle(image, new Rect(face.Box.X, top, size.Width + 6, size.Height + baseline + 4), colour, -1);
            Cv2.PutText(image, label, new Point(face.Box.X + 3, top + size.Height + 2), HersheyFonts.HersheySimplex, 0.6 * scale,
                Scalar.All(255), thickness, LineTypes.AntiAlias);

            // Probability bars beside the box (below it if there is no room on the right).
            var barWidth = (int)(110 * scale);
            var barHeight = Math.Max(8, (int)(13 * scale));
            var x = face.Box.X + face.Box.Width + 6;
            var y = face.Box.Y;
            if (x + barWidth + 70 * scale > image.Width)
            {
                x = face.Box.X;
                y = face.Box.Y + face.Box.Height + 6;
            }
            foreach (var (name, p) in face.Probabilities.OrderByDescending(kv => kv.Value))
            {
                if (y + barHeight > image.Height) break;
                Cv2.Rectangle(image, new Rect(x, y, barWidth, barHeight), new Scalar(50, 50, 50), -1);
                Cv2.Rectangle(image, new Rect(x, y, Math.Max(1, (int)(barWidth * p)), barHeight), ColourOf(name), -1);
                Cv2.PutText(image, $"{name} {p:P0}", new Point(x + barWidth + 4, y + barHeight - 2), HersheyFonts.HersheySimplex,
                    0.4 * scale, Scalar.All(255), Math.Max(1, thickness - 1), LineTypes.AntiAlias);
                y += barHeight + 3;
            }
        }
    }
}
