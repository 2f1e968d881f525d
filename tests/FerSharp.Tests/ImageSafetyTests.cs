using System.Buffers.Binary;
using System.Text;

using FerSharp.Inference;

using OpenCvSharp;

namespace FerSharp.Tests;

/// <summary>
/// Decompression bombs: every format OpenCV decodes has its declared size read and checked before decoding.
/// Files come from OpenCV's own encoders where it has one (so the header reader is checked against real
/// files), small enough to make quickly, against a limit lowered to 1 megapixel.
/// </summary>
public sealed class ImageSafetyTests
{
    private const long Limit = 1_000_000;

    public static TheoryData<string> EncodableFormats => [".png", ".jpg", ".bmp", ".tiff", ".webp", ".pgm", ".ppm", ".pam", ".pfm", ".ras", ".hdr", ".jp2"];

    [Theory]
    [MemberData(nameof(EncodableFormats))]
    public void Sizes_are_read_from_files_opencv_writes(string extension)
    {
        var small = Encode(extension, 333, 217);
        Assert.Equal((333, 217), ImageSafety.ReadDimensions(small));
        ImageSafety.EnsureDecodable(small, Limit);
    }

    [Theory]
    [MemberData(nameof(EncodableFormats))]
    public void Over_the_limit_is_refused_before_decoding(string extension)
    {
        var bomb = Encode(extension, 1201, 1000);
        var error = Assert.Throws<InvalidDataException>(() => ImageSafety.EnsureDecodable(bomb, Limit));
        Assert.Contains("1201x1000", error.Message);
    }

    [Fact]
    public void A_compressed_tiff_bomb_is_refused_before_decoding()
    {
        // The case: a deflate TIFF of a large blank page is a few hundred KB and gigabytes decoded.
        using var page = new Mat(4000, 3000, MatType.CV_8UC1, Scalar.All(0));
        Cv2.ImEncode(".tiff", page, out var tiff, new ImageEncodingParam(ImwriteFlags.TiffCompression, 8));
        Assert.True(tiff.Length < 200_000, $"{tiff.Length} bytes");
        var error = Assert.Throws<InvalidDataException>(() => EmotionRecognizer.Decode(tiff, maxPixels: 10_000_000));
        Assert.Contains("3000x4000", error.Message);
    }

    [Fact]
    public void A_tiff_is_judged_by_its_largest_page()
    {
        // A small first page in front of a huge second one must not let the second through.
        var tiff = TiffWithPages((100, 100), (20000, 20000));
        Assert.Equal((20000, 20000), ImageSafety.ReadDimensions(tiff));
    }

    [Fact]
    public void Webp_lossy_and_lossless_headers_are_read()
    {
        using var image = new Mat(240, 320, MatType.CV_8UC3, Scalar.All(90));
        Cv2.ImEncode(".webp", image, out var lossy, new ImageEncodingParam(ImwriteFlags.WebPQuality, 80));
        Cv2.ImEncode(".webp", image, out var lossless, new ImageEncodingParam(ImwriteFlags.WebPQuality, 101));
        Assert.Equal("VP8 ", Encoding.ASCII.GetString(lossy, 12, 4));
        Assert.Equal("VP8L", Encoding.ASCII.GetString(lossless, 12, 4));
        Assert.Equal((320, 240), ImageSafety.ReadDimensions(lossy));
        Assert.Equal((320, 240), ImageSafety.ReadDimensions(lossless));
    }

    [Fact]
    public void Hand_made_headers_of_formats_without_an_encoder_here_are_read()
    {
        Assert.Equal((20000, 20000), ImageSafety.ReadDimensions(Exr(20000, 20000)));
        Assert.Equal((30000, 20000), ImageSafety.ReadDimensions(Heif(30000, 20000)));
        var codestream = new byte[] { 0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0 }.Concat(BigEndian(20000)).Concat(BigEndian(10000))
            .Concat(BigEndian(0)).Concat(BigEndian(0)).ToArray();
        Assert.Equal((20000, 10000), ImageSafety.ReadDimensions(codestream));
        Assert.Equal((7000, 9000), ImageSafety.ReadDimensions("P5\n# a comment\n7000 9000\n255\n"u8.ToArray()));
        Assert.Equal((640, 480), ImageSafety.ReadDimensions("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 480 +X 640\n"u8.ToArray()));
    }

    [Theory]
    [InlineData("random bytes")]
    [InlineData("truncated png")]
    [InlineData("truncated tiff")]
    public void Unknown_or_cut_short_headers_are_refused_by_name(string kind)
    {
        byte[] data = kind switch
        {
            "random bytes" => Enumerable.Range(0, 64).Select(i => (byte)(i * 37 + 11)).ToArray(),
            "truncated png" => Encode(".png", 20, 20)[..12],
            _ => Encode(".tiff", 20, 20)[..6],
        };
        var error = Assert.Throws<InvalidDataException>(() => ImageSafety.EnsureDecodable(data, Limit));
        Assert.Contains("unknown format", error.Message);
    }

    private static byte[] Encode(string extension, int width, int height)
    {
        var floats = extension is ".pfm" or ".hdr";
        var type = floats ? MatType.CV_32FC3 : extension == ".pgm" ? MatType.CV_8UC1 : MatType.CV_8UC3;
        using var image = new Mat(height, width, type, Scalar.All(floats ? 0.5 : 128));
        Assert.True(Cv2.ImEncode(extension, image, out var bytes), $"OpenCV could not encode {extension}");
        return bytes;
    }

    private static byte[] BigEndian(int value)
    {
        var bytes = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(bytes, value);
        return bytes;
    }

    private static byte[] TiffWithPages(params (int Width, int Height)[] pages)
    {
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write("II*\0"u8);
        writer.Write(8u);
        for (var p = 0; p < pages.Length; p++)
        {
            writer.Write((ushort)2);
            writer.Write((ushort)256); writer.Write((ushort)4); writer.Write(1u); writer.Write((uint)pages[p].Width);
            writer.Write((ushort)257); writer.Write((ushort)4); writer.Write(1u); writer.Write((uint)pages[p].Height);
            writer.Write(p + 1 < pages.Length ? (uint)(stream.Position + 4) : 0u);
        }
        return stream.ToArray();
    }

    private static byte[] Exr(int width, int height)
    {
        using var stream = new MemoryStream();
        using var writer = new BinaryWriter(stream);
        writer.Write(new byte[] { 0x76, 0x2F, 0x31, 0x01, 2, 0, 0, 0 });
        writer.Write("compression\0compression\0"u8); writer.Write(1); writer.Write((byte)0);
        writer.Write("dataWindow\0box2i\0"u8); writer.Write(16);
        writer.Write(0); writer.Write(0); writer.Write(width - 1); writer.Write(height - 1);
        writer.Write((byte)0);
        return stream.ToArray();
    }

    private static byte[] Heif(int width, int height)
    {
        var ftyp = new byte[] { 0, 0, 0, 16 }.Concat("ftypavif"u8.ToArray()).Concat(new byte[4]);
        var ispe = new byte[] { 0, 0, 0, 20 }.Concat("ispe"u8.ToArray()).Concat(new byte[4]).Concat(BigEndian(width)).Concat(BigEndian(height));
        return ftyp.Concat(ispe).ToArray();
    }
}
