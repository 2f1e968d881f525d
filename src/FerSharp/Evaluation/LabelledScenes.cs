using FerSharp.Data;

using OpenCvSharp;

namespace FerSharp.Evaluation;

/// <summary>How a labelled test photo is made from a 48x48 face.</summary>
public enum SceneKind
{
    /// <summary>The face at 80-220 px, turned up to 15°, in a 640x480 scene of plain or graded background.</summary>
    Scene,
    /// <summary>The face alone, enlarged to 120-256 px: a tight crop as face datasets ship them, larger than a detection-free crop.</summary>
    TightCrop,
}

/// <summary>
/// Labelled photos for <c>fer evaluate --detect</c> made from FER2013 faces: pasted into scenes at several
/// sizes and angles, under changed light (gamma, contrast, brightness), then JPEG-compressed, so the whole
/// photo path (detect, crop, classify) can be measured on faces whose labels are known. Written to a folder
/// the caller chooses; never to be committed (they are FER2013 faces).
/// </summary>
public static class LabelledScenes
{
    /// <summary>Writes <c>&lt;folder&gt;/&lt;class&gt;/&lt;index&gt;-&lt;kind&gt;.jpg</c> for each face; returns how many were written.</summary>
    public static int Write(FaceDataset faces, string folder, int count, int seed = 1, IReadOnlyList<SceneKind>? kinds = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(faces);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        kinds ??= [SceneKind.Scene, SceneKind.TightCrop];
        var total = Math.Min(count, faces.Count);
        for (var i = 0; i < total; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var random = new Random(seed * 1_000_003 + i);
            var kind = kinds[i % kinds.Count];
            using var photo = Make(faces.Face(i).ToArray(), kind, random);
            Cv2.ImEncode(".jpg", photo, out var jpeg, new ImageEncodingParam(ImwriteFlags.JpegQuality, random.Next(60, 96)));
            var classFolder = Path.Combine(folder, faces.ClassNames[faces.Labels[i]]);
            Directory.CreateDirectory(classFolder);
            AtomicFile.WriteAllBytes(Path.Combine(classFolder, $"{i:D5}-{kind.ToString().ToLowerInvariant()}.jpg"), jpeg);
        }
        return total;
    }

    /// <summary>One photo of one face (BGR).</summary>
    public static Mat Make(byte[] face, SceneKind kind, Random random)
    {
        ArgumentNullException.ThrowIfNull(face);
        ArgumentNullException.ThrowIfNull(random);
        using var lit = Relight(face, random);
        if (kind == SceneKind.TightCrop)
        {
            var side = random.Next(120, 257);
            using var big = lit.Resize(new Size(side, side), 0, 0, InterpolationFlags.Cubic);
            return big.CvtColor(ColorConversionCodes.GRAY2BGR);
        }
        var faceSide = random.Next(80, 221);
        using var enlarged = lit.Resize(new Size(faceSide, faceSide), 0, 0, InterpolationFlags.Cubic);
        using var colour = enlarged.CvtColor(ColorConversionCodes.GRAY2BGR);
        var angle = (random.NextDouble() * 2 - 1) * 15;
        using var turn = Cv2.GetRotationMatrix2D(new Point2f(faceSide / 2f, faceSide / 2f), angle, 1);
        using var turned = colour.WarpAffine(turn, colour.Size(), InterpolationFlags.Linear, BorderTypes.Replicate);
        var canvas = Background(random);
        var x = random.Next(0, 640 - faceSide);
        var y = random.Next(0, 480 - faceSide);
        turned.CopyTo(canvas[new Rect(x, y, faceSide, faceSide)]);
        return canvas;
    }

    /// <summary>Gamma 0.6-1.6, contrast 0.6-1.3 and a brightness shift of up to ±40 grey levels, clipped.</summary>
    private static Mat Relight(byte[] face, Random random)
    {
        var gamma = Math.Exp((random.NextDouble() * 2 - 1) * 0.5);
        var contrast = 0.6 + random.NextDouble() * 0.7;
        var shift = (random.NextDouble() * 2 - 1) * 40;
        var lut = new byte[256];
        for (var v = 0; v < 256; v++)
        {
            var g = 255 * Math.Pow(v / 255.0, gamma);
            lut[v] = (byte)Math.Clamp(Math.Round(128 + (g - 128) * contrast + shift), 0, 255);
        }
        var relit = new byte[face.Length];
        for (var p = 0; p < face.Length; p++) relit[p] = lut[face[p]];
        return Mat.FromPixelData(48, 48, MatType.CV_8UC1, relit).Clone();
    }

    private static Mat Background(Random random)
    {
        var top = new Vec3b((byte)random.Next(40, 220), (byte)random.Next(40, 220), (byte)random.Next(40, 220));
        var bottom = new Vec3b((byte)random.Next(40, 220), (byte)random.Next(40, 220), (byte)random.Next(40, 220));
        return Gradient(new Size(640, 480), top, bottom);
    }

    /// <summary>A BGR image shading from <paramref name="top"/> to <paramref name="bottom"/>, a plain photo background.</summary>
    internal static Mat Gradient(Size size, Vec3b top, Vec3b bottom)
    {
        // A 2x1 image stretched by linear interpolation.
        using var ends = new Mat(2, 1, MatType.CV_8UC3);
        ends.Set(0, 0, top);
        ends.Set(1, 0, bottom);
        return ends.Resize(size, 0, 0, InterpolationFlags.Linear);
    }
}
