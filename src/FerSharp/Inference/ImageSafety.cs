using System.Buffers.Binary;

namespace FerSharp.Inference;

/// <summary>Refuses images whose header declares more pixels than we will decode (decompression bombs).</summary>
public static class ImageSafety
{
    /// <summary>Reads width and height from a PNG, JPEG, BMP, GIF or WebP header; null if the format is not recognised.</summary>
    public static (int Width, int Height)? ReadDimensions(ReadOnlySpan<byte> data)
    {
        if (data.Length >= 24 && data[..8].SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }))
        {
            return ((int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(data[16..])), (int)Math.Min(int.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(data[20..])));
        }
        if (data.Length >= 26 && data[0] == (byte)'B' && data[1] == (byte)'M')
        {
            return (Math.Abs(BinaryPrimitives.ReadInt32LittleEndian(data[18..])), Math.Abs(BinaryPrimitives.ReadInt32LittleEndian(data[22..])));
        }
        if (data.Length >= 10 && data[0] == (byte)'G' && data[1] == (byte)'I' && data[2] == (byte)'F')
        {
            return (BinaryPrimitives.ReadUInt16LittleEndian(data[6..]), BinaryPrimitives.ReadUInt16LittleEndian(data[8..]));
        }
        if (data.Length >= 30 && data[..4].SequenceEqual("RIFF"u8) && data[8..12].SequenceEqual("WEBP"u8) && data[12..16].SequenceEqual("VP8X"u8))
        {
            return (1 + (data[24] | data[25] << 8 | data[26] << 16), 1 + (data[27] | data[28] << 8 | data[29] << 16));
        }
        if (data.Length >= 4 && data[0] == 0xFF && data[1] == 0xD8)
        {
            var i = 2;
            while (i + 9 < data.Length)
            {
                if (data[i] != 0xFF) { i++; continue; }
                var marker = data[i + 1];
                if (marker == 0xFF) { i++; continue; }
                if (marker is 0xD8 or 0x01 or (>= 0xD0 and <= 0xD7)) { i += 2; continue; }
                var length = BinaryPrimitives.ReadUInt16BigEndian(data[(i + 2)..]);
                // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size
                if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
                {
                    return (BinaryPrimitives.ReadUInt16BigEndian(data[(i + 7)..]), BinaryPrimitives.ReadUInt16BigEndian(data[(i + 5)..]));
                }
                i += 2 + length;
            }
        }
        return null;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> when the declared size exceeds <paramref name="maxPixels"/>.</summary>
    public static void EnsureDecodable(ReadOnlySpan<byte> data, long maxPixels)
    {
        if (data.Length == 0)
        {
            throw new InvalidDataException("empty file (0 bytes)");
        }
        if (ReadDimensions(data) is var (width, height) && (long)width * height > maxPixels)
        {
            throw new InvalidDataException($"image declares {width}x{height} pixels, over the {maxPixels / 1_000_000.0:0.#}-megapixel limit");
        }
    }
}
