using FerSharp.Data;
using FerSharp.Evaluation;

using OpenCvSharp;

namespace FerSharp.Models;

/// <summary>
/// The views of 48x48 faces a prediction averages over (test-time augmentation and a package's flip
/// averaging), as grey pixel values 0..255 in float, laid out [view][face][48x48]: the input of a package's
/// ONNX graph, which does the normalization itself. The same views as FerSharp.Training's tensor path.
/// </summary>
public static class FaceViews
{
    /// <summary>Side of the five crops of <see cref="TtaMode.Crops"/>, each rescaled to 48x48.</summary>
    public const int CropSize = 42;

    /// <summary>
    /// How many views of each face <paramref name="tta"/> gives: mirrors are included for every mode but
    /// <see cref="TtaMode.None"/>, and for that one too when the package averages each face with its mirror.
    /// </summary>
    public static int Count(TtaMode tta, bool flipAveraging) => tta switch
    {
        TtaMode.None => flipAveraging ? 2 : 1,
        TtaMode.Flip => 2,
        TtaMode.Crops => 10,
        _ => throw new ArgumentOutOfRangeException(nameof(tta), tta, null),
    };

    /// <summary>The views, view-major: all faces' first view, then all faces' second, and so on.</summary>
    public static float[] Build(IReadOnlyList<byte[]> faces, TtaMode tta, bool flipAveraging)
    {
        ArgumentNullException.ThrowIfNull(faces);
        const int side = FaceDataset.ImageSize;
        const int pixels = FaceDataset.PixelsPerImage;
        var count = faces.Count;
        var views = Count(tta, flipAveraging);
        var output = new float[views * count * pixels];
        for (var i = 0; i < count; i++)
        {
            var face = faces[i];
            if (face.Length != pixels)
            {
                throw new ArgumentException($"face {i} has {face.Length} bytes; expected 48x48 = {pixels}");
            }
            if (tta == TtaMode.Crops)
            {
                var offset = side - CropSize;
                var v = 0;
                foreach (var (y, x) in new[] { (0, 0), (0, offset), (offset, 0), (offset, offset), (offset / 2, offset / 2) })
                {
                    var crop = Crop(face, x, y);
                    crop.CopyTo(output.AsSpan((v++ * count + i) * pixels, pixels));
                    Mirror(crop, output.AsSpan((v++ * count + i) * pixels, pixels));
                }
                continue;
            }
            var plain = output.AsSpan(i * pixels, pixels);
            for (var p = 0; p < pixels; p++) plain[p] = face[p];
            if (views == 2) Mirror(plain, output.AsSpan((count + i) * pixels, pixels));
        }
        return output;
    }

    /// <summary>
    /// A 42x42 crop at (x, y) rescaled to 48x48 bilinearly with half-pixel centres, as libtorch's
    /// <c>interpolate(align_corners: false)</c> does when enlarging.
    /// </summary>
    private static float[] Crop(byte[] face, int x, int y)
    {
        const int side = FaceDataset.ImageSize;
        using var whole = Mat.FromPixelData(side, side, MatType.CV_8UC1, face);
        using var floats = new Mat();
        whole.ConvertTo(floats, MatType.CV_32F);
        using var crop = new Mat(floats, new Rect(x, y, CropSize, CropSize));
        using var resized = crop.Resize(new Size(side, side), 0, 0, InterpolationFlags.Linear);
        resized.GetArray(out float[] values);
        return values;
    }

    private static void Mirror(ReadOnlySpan<float> face, Span<float> output)
    {
        const int side = FaceDataset.ImageSize;
        for (var row = 0; row < side; row++)
        {
            for (var col = 0; col < side; col++) output[row * side + col] = face[row * side + side - 1 - col];
        }
    }

    /// <summary>Each face's probabilities: the softmax of each view's logits, averaged over its views.</summary>
    public static float[][] AverageSoftmax(float[] logits, int faces, int views, int classes)
    {
        ArgumentNullException.ThrowIfNull(logits);
        if (logits.Length != faces * views * classes)
        {
            throw new ArgumentException($"{logits.Length} logits for {faces} faces x {views} views x {classes} classes");
        }
        var rows = new float[faces][];
        var e = new float[classes];
        for (var i = 0; i < faces; i++)
        {
            var row = new float[classes];
            for (var v = 0; v < views; v++)
            {
                var view = logits.AsSpan((v * faces + i) * classes, classes);
                var max = float.NegativeInfinity;
                foreach (var value in view) max = Math.Max(max, value);
                var sum = 0f;
                for (var c = 0; c < classes; c++) sum += e[c] = MathF.Exp(view[c] - max);
                for (var c = 0; c < classes; c++) row[c] += e[c] / sum;
            }
            for (var c = 0; c < classes; c++) row[c] /= views;
            rows[i] = row;
        }
        return rows;
    }
}
