using OpenCvSharp;

namespace FerSharp.Data;

/// <summary>Turns encoded images of any size or colour into the model's 48x48 grayscale bytes.</summary>
public static class FaceImages
{
    /// <summary>The largest image a dataset file may declare: far above any face photo, far below a decompression bomb.</summary>
    public const long MaxPixels = 50_000_000;

    /// <summary>Decodes <paramref name="encoded"/> to grayscale 48x48, or returns null when it is not a readable image.</summary>
    /// <exception cref="InvalidDataException">The header declares more than <see cref="MaxPixels"/> pixels, or its format's size cannot be read (the reason is named).</exception>
    public static byte[]? DecodeTo48Gray(byte[] encoded)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        if (encoded.Length == 0)
        {
            return null;
        }
        Inference.ImageSafety.EnsureDecodable(encoded, MaxPixels);
        using var mat = Cv2.ImDecode(encoded, ImreadModes.Grayscale);
        if (mat.Empty())
        {
            return null;
        }
        return ToFaceBytes(mat);
    }

    /// <summary>Resizes a single-channel or colour <see cref="Mat"/> to 48x48 grayscale bytes.</summary>
    public static byte[] ToFaceBytes(Mat image)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var gray = image.Channels() switch
        {
            1 => image.Clone(),
            3 => image.CvtColor(ColorConversionCodes.BGR2GRAY),
            4 => image.CvtColor(ColorConversionCodes.BGRA2GRAY),
            var c => throw new ArgumentException($"unsupported channel count {c}"),
        };
        using var resized = gray.Width == FaceDataset.ImageSize && gray.Height == FaceDataset.ImageSize
            ? gray.Clone()
            : gray.Resize(new Size(FaceDataset.ImageSize, FaceDataset.ImageSize), 0, 0,
                gray.Width > FaceDataset.ImageSize ? InterpolationFlags.Area : InterpolationFlags.Linear);
        using var bytes = resized.Depth() == MatType.CV_8U ? resized.Clone() : ConvertTo8U(resized);
        var result = new byte[FaceDataset.PixelsPerImage];
        bytes.GetArray(out byte[] data);
        Buffer.BlockCopy(data, 0, result, 0, result.Length);
        return result;
    }

    private static Mat ConvertTo8U(Mat mat)
    {
        var output = new Mat();
        mat.ConvertTo(output, MatType.CV_8U);
        return output;
    }

    /// <summary>Encodes a 48x48 face as PNG.</summary>
    public static byte[] EncodePng(ReadOnlySpan<byte> face)
    {
        using var mat = Mat.FromPixelData(FaceDataset.ImageSize, FaceDataset.ImageSize, MatType.CV_8UC1, face.ToArray());
        return mat.ImEncode(".png");
    }
}
