using OpenCvSharp;

namespace FerSharp.Data;

/// <summary>One class's mean face: 48x48 grey pixels, stretched to the full 0-255 range so that it is visible.</summary>
public sealed record AverageFace(string ClassName, int FaceCount, byte[] Pixels);

/// <summary>
/// The mean face of each class: every pixel averaged over the class's faces. FER2013's faces are roughly centred,
/// so the mean of a class shows its typical expression; over hundreds of faces it shows none of the faces it
/// came from. That is why it may be shown where the dataset's own images may not (README's example picture).
/// </summary>
public static class AverageFaces
{
    /// <summary>Classes with fewer faces are left out: an average of a few faces still shows them.</summary>
    public const int MinimumFaces = 200;

    /// <summary>The average face of every class with at least <see cref="MinimumFaces"/> faces, in class order.</summary>
    public static IReadOnlyList<AverageFace> Compute(FaceDataset faces, int minimumFaces = MinimumFaces, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(faces);
        ArgumentOutOfRangeException.ThrowIfLessThan(minimumFaces, 1);
        var sums = new long[faces.ClassCount, FaceDataset.PixelsPerImage];
        var counts = new int[faces.ClassCount];
        for (var i = 0; i < faces.Count; i++)
        {
            if (i % 1024 == 0) cancellationToken.ThrowIfCancellationRequested();
            var label = faces.Labels[i];
            var face = faces.Face(i);
            for (var p = 0; p < face.Length; p++) sums[label, p] += face[p];
            counts[label]++;
        }
        var averages = new List<AverageFace>();
        for (var c = 0; c < faces.ClassCount; c++)
        {
            if (counts[c] < minimumFaces) continue;
            var mean = new double[FaceDataset.PixelsPerImage];
            for (var p = 0; p < mean.Length; p++) mean[p] = (double)sums[c, p] / counts[c];
            averages.Add(new AverageFace(faces.ClassNames[c], counts[c], Stretched(mean)));
        }
        return averages;
    }

    /// <summary>
    /// A photo-like BGR scene of the given faces side by side, each enlarged to <paramref name="side"/> pixels on a
    /// soft background, for trying the detect, crop and classify path on faces that may be shown.
    /// </summary>
    public static Mat Scene(IReadOnlyList<AverageFace> faces, int side = 200)
    {
        ArgumentNullException.ThrowIfNull(faces);
        if (faces.Count == 0) throw new ArgumentException("no faces to place", nameof(faces));
        ArgumentOutOfRangeException.ThrowIfLessThan(side, 48);
        // Room right of each face for fer predict --annotate's probability bars.
        var gap = side * 3 / 5;
        var border = side / 4;
        var width = faces.Count * (side + gap) + border;
        var height = side + 2 * border;
        var scene = Evaluation.LabelledScenes.Gradient(new Size(width, height), new Vec3b(200, 190, 175), new Vec3b(120, 110, 100));
        for (var k = 0; k < faces.Count; k++)
        {
            using var grey = Mat.FromPixelData(FaceDataset.ImageSize, FaceDataset.ImageSize, MatType.CV_8UC1, faces[k].Pixels);
            using var enlarged = grey.Resize(new Size(side, side), 0, 0, InterpolationFlags.Cubic);
            using var colour = enlarged.CvtColor(ColorConversionCodes.GRAY2BGR);
            using var place = scene[new Rect(border + k * (side + gap), border, side, side)];
            colour.CopyTo(place);
        }
        return scene;
    }

    private static byte[] Stretched(double[] mean)
    {
        var (low, high) = (mean.Min(), mean.Max());
        var range = high - low;
        return [.. mean.Select(v => (byte)Math.Round(range > 0 ? (v - low) * 255 / range : 128))];
    }
}
