using FerSharp.Data;

using OpenCvSharp;

using TorchSharp;

using static TorchSharp.torch;

using Scalar = OpenCvSharp.Scalar;
using Size = OpenCvSharp.Size;

namespace FerSharp.Training;

/// <summary>A picture of what augmentation does: each row is an original face followed by augmented versions.</summary>
public static class AugmentationPreview
{
    public static byte[] Render(FaceDataset data, AugmentOptions options, int rows = 6, int variants = 7, long seed = 1, int cell = 96)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(options);
        rows = Math.Min(rows, data.Count);
        if (rows == 0) throw new ArgumentException("no faces to preview");
        using var scope = NewDisposeScope();
        using var generator = new Generator().manual_seed(seed);
        var picks = Enumerable.Range(0, rows).Select(r => (int)((long)r * data.Count / rows)).ToArray();
        var originals = data.Select(picks).ToTensor().to(ScalarType.Float32).div(255f);
        var repeated = originals.repeat_interleave(variants, 0);
        var augmented = Augmentation.Apply(repeated, options, generator).mul(255f).clamp(0, 255).to(ScalarType.Byte).contiguous();
        var augmentedBytes = augmented.data<byte>().ToArray();

        const int pad = 4, header = 28;
        var width = pad + (variants + 1) * (cell + pad);
        var height = header + rows * (cell + pad) + pad;
        using var canvas = new Mat(height, width, MatType.CV_8UC3, Scalar.All(255));
        Cv2.PutText(canvas, $"original | augmented: {options}", new Point(pad, 20), HersheyFonts.HersheySimplex, 0.55, Scalar.All(30), 1, LineTypes.AntiAlias);
        for (var r = 0; r < rows; r++)
        {
            Paste(canvas, data.Face(picks[r]).ToArray(), pad, header + r * (cell + pad), cell);
            Cv2.Line(canvas, new Point(pad + cell + pad / 2, header + r * (cell + pad)), new Point(pad + cell + pad / 2, header + r * (cell + pad) + cell), new Scalar(0, 0, 200), 2);
            for (var v = 0; v < variants; v++)
            {
                var offset = (r * variants + v) * FaceDataset.PixelsPerImage;
                Paste(canvas, augmentedBytes.AsSpan(offset, FaceDataset.PixelsPerImage).ToArray(), pad + (v + 1) * (cell + pad), header + r * (cell + pad), cell);
            }
        }
        return canvas.ImEncode(".png");
    }

    private static void Paste(Mat canvas, byte[] face, int x, int y, int cell)
    {
        using var mat = Mat.FromPixelData(FaceDataset.ImageSize, FaceDataset.ImageSize, MatType.CV_8UC1, face);
        using var big = mat.Resize(new Size(cell, cell), 0, 0, InterpolationFlags.Nearest);
        using var colour = big.CvtColor(ColorConversionCodes.GRAY2BGR);
        colour.CopyTo(canvas[new Rect(x, y, cell, cell)]);
    }
}
