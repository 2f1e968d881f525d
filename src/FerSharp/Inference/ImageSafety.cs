using System.Buffers.Binary;
using System.Text;

namespace FerSharp.Inference;

/// <summary>
/// Refuses images whose header declares more pixels than we will decode (decompression bombs), before any
/// decoder sees them. Every format OpenCV decodes has its size read here; a format whose size cannot be read
/// is refused, and OpenCV's own pixel limit (<see cref="OpenCvPixelLimit"/>) stands behind this check.
/// </summary>
public static class ImageSafety
{
    /// <summary>The formats whose size <see cref="ReadDimensions"/> reads (and so the only ones decoded).</summary>
    public const string KnownFormats = "PNG, JPEG, BMP, GIF, WebP, TIFF, PNM/PAM/PFM, Sun raster, Radiance HDR, OpenEXR, JPEG 2000, AVIF/HEIF";

    /// <summary>
    /// OpenCV's second guard, OPENCV_IO_MAX_IMAGE_PIXELS, set for this process before its first decode unless
    /// the environment already sets it: 256 megapixels, above any limit a recognizer is configured with.
    /// </summary>
    public const long OpenCvPixelLimit = 1L << 28;

    private static readonly Lazy<bool> OpenCvLimitSet = new(SetOpenCvLimit);

    /// <summary>
    /// Reads width and height from the header of any format OpenCV decodes (<see cref="KnownFormats"/>);
    /// null if the format is not recognised or its header is cut short. For a file of several images (TIFF
    /// pages, HEIF items) the largest is given.
    /// </summary>
    public static (int Width, int Height)? ReadDimensions(ReadOnlySpan<byte> data)
    {
        if (data.Length >= 24 && data[..8].SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }))
        {
            return (Clamp(BinaryPrimitives.ReadUInt32BigEndian(data[16..])), Clamp(BinaryPrimitives.ReadUInt32BigEndian(data[20..])));
        }
        if (data.Length >= 26 && data[0] == (byte)'B' && data[1] == (byte)'M')
        {
            return (Math.Abs(BinaryPrimitives.ReadInt32LittleEndian(data[18..])), Math.Abs(BinaryPrimitives.ReadInt32LittleEndian(data[22..])));
        }
        if (data.Length >= 10 && data[..3].SequenceEqual("GIF"u8))
        {
            return (BinaryPrimitives.ReadUInt16LittleEndian(data[6..]), BinaryPrimitives.ReadUInt16LittleEndian(data[8..]));
        }
        if (data.Length >= 16 && data[..4].SequenceEqual("RIFF"u8) && data[8..12].SequenceEqual("WEBP"u8))
        {
            return WebP(data);
        }
        if (data.Length >= 4 && data[0] == 0xFF && data[1] == 0xD8)
        {
            return Jpeg(data);
        }
        if (data.Length >= 8 && (data[..4].SequenceEqual("II*\0"u8) || data[..4].SequenceEqual("MM\0*"u8)
            || data[..4].SequenceEqual("II+\0"u8) || data[..4].SequenceEqual("MM\0+"u8)))
        {
            return Tiff(data);
        }
        if (data.Length >= 2 && data[0] == (byte)'P' && data[1] is (byte)'1' or (byte)'2' or (byte)'3' or (byte)'4' or (byte)'5' or (byte)'6' or (byte)'F' or (byte)'f')
        {
            return Pnm(data);
        }
        if (data.Length >= 3 && data[..3].SequenceEqual("P7\n"u8))
        {
            return Pam(data);
        }
        if (data.Length >= 12 && data[..4].SequenceEqual(new byte[] { 0x59, 0xA6, 0x6A, 0x95 }))
        {
            return (Clamp(BinaryPrimitives.ReadUInt32BigEndian(data[4..])), Clamp(BinaryPrimitives.ReadUInt32BigEndian(data[8..])));
        }
        if (data.Length >= 2 && data[..2].SequenceEqual("#?"u8))
        {
            return RadianceHdr(data);
        }
        if (data.Length >= 8 && data[..4].SequenceEqual(new byte[] { 0x76, 0x2F, 0x31, 0x01 }))
        {
            return OpenExr(data);
        }
        if (data.Length >= 12 && data[..12].SequenceEqual(new byte[] { 0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A }))
        {
            return Jp2(data);
        }
        if (data.Length >= 4 && data[..4].SequenceEqual(new byte[] { 0xFF, 0x4F, 0xFF, 0x51 }))
        {
            return J2kCodestream(data, 4);
        }
        if (data.Length >= 12 && data[4..8].SequenceEqual("ftyp"u8))
        {
            return Heif(data);
        }
        return null;
    }

    /// <summary>
    /// Throws <see cref="InvalidDataException"/> when the image is empty, its format's size cannot be read,
    /// or its declared size exceeds <paramref name="maxPixels"/>.
    /// </summary>
    public static void EnsureDecodable(ReadOnlySpan<byte> data, long maxPixels)
    {
        _ = OpenCvLimitSet.Value;
        if (data.Length == 0)
        {
            throw new InvalidDataException("empty file (0 bytes)");
        }
        if (ReadDimensions(data) is not var (width, height))
        {
            throw new InvalidDataException($"not a readable image: unknown format, or a header cut short (read: {KnownFormats})");
        }
        if ((long)width * height > maxPixels)
        {
            throw new InvalidDataException($"image declares {width}x{height} pixels, over the {maxPixels / 1_000_000.0:0.#}-megapixel limit");
        }
    }

    private static int Clamp(long value) => (int)Math.Clamp(value, 0, int.MaxValue);

    private static (int, int)? Jpeg(ReadOnlySpan<byte> data)
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
        return null;
    }

    private static (int, int)? WebP(ReadOnlySpan<byte> data)
    {
        var chunk = data[12..16];
        if (chunk.SequenceEqual("VP8X"u8) && data.Length >= 30)
        {
            return (1 + (data[24] | data[25] << 8 | data[26] << 16), 1 + (data[27] | data[28] << 8 | data[29] << 16));
        }
        // Lossy: a 3-byte frame tag, the start code 9D 01 2A, then 14-bit width and height.
        if (chunk.SequenceEqual("VP8 "u8) && data.Length >= 30 && data[23] == 0x9D && data[24] == 0x01 && data[25] == 0x2A)
        {
            return (BinaryPrimitives.ReadUInt16LittleEndian(data[26..]) & 0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(data[28..]) & 0x3FFF);
        }
        // Lossless: the signature 0x2F, then width - 1 and height - 1 in 14 bits each.
        if (chunk.SequenceEqual("VP8L"u8) && data.Length >= 25 && data[20] == 0x2F)
        {
            var bits = BinaryPrimitives.ReadUInt32LittleEndian(data[21..]);
            return ((int)(bits & 0x3FFF) + 1, (int)((bits >> 14) & 0x3FFF) + 1);
        }
        return null;
    }

    /// <summary>Every image file directory (page) is read, because a decoder may be asked for any of them.</summary>
    private static (int, int)? Tiff(ReadOnlySpan<byte> data)
    {
        var little = data[0] == (byte)'I';
        var big = (little ? BinaryPrimitives.ReadUInt16LittleEndian(data[2..]) : BinaryPrimitives.ReadUInt16BigEndian(data[2..])) == 43;
        if (big && data.Length < 16) return null;
        var offset = big ? U64(data, little, 8) : U32(data, little, 4);
        (int Width, int Height)? largest = null;
        var seen = new HashSet<ulong>();
        for (var page = 0; offset != 0 && page < 1024 && seen.Add(offset); page++)
        {
            var countSize = big ? 8 : 2;
            var entrySize = big ? 20 : 12;
            if (offset + (ulong)countSize > (ulong)data.Length) return null;
            var count = big ? U64(data, little, (long)offset) : U16(data, little, (long)offset);
            var entries = (long)offset + countSize;
            if (count > 4096 || entries + (long)count * entrySize + (big ? 8 : 4) > data.Length) return null;
            long width = -1, height = -1;
            for (var e = 0L; e < (long)count; e++)
            {
                var at = entries + e * entrySize;
                var tag = U16(data, little, at);
                if (tag is not (256 or 257)) continue;
                var type = U16(data, little, at + 2);
                var valueAt = at + (big ? 12 : 8);
                long value = type switch
                {
                    3 => (long)U16(data, little, valueAt),
                    4 => (long)U32(data, little, valueAt),
                    16 when big => (long)Math.Min(U64(data, little, valueAt), int.MaxValue),
                    _ => -1,
                };
                if (tag == 256) width = value; else height = value;
            }
            if (width < 0 || height < 0) return null;
            if (largest is null || width * height > (long)largest.Value.Width * largest.Value.Height)
            {
                largest = (Clamp(width), Clamp(height));
            }
            var next = entries + (long)count * entrySize;
            offset = big ? U64(data, little, next) : U32(data, little, next);
        }
        return largest;
    }

    private static ulong U16(ReadOnlySpan<byte> data, bool little, long at) =>
        little ? BinaryPrimitives.ReadUInt16LittleEndian(data[(int)at..]) : BinaryPrimitives.ReadUInt16BigEndian(data[(int)at..]);

    private static ulong U32(ReadOnlySpan<byte> data, bool little, long at) =>
        little ? BinaryPrimitives.ReadUInt32LittleEndian(data[(int)at..]) : BinaryPrimitives.ReadUInt32BigEndian(data[(int)at..]);

    private static ulong U64(ReadOnlySpan<byte> data, bool little, long at) =>
        little ? BinaryPrimitives.ReadUInt64LittleEndian(data[(int)at..]) : BinaryPrimitives.ReadUInt64BigEndian(data[(int)at..]);

    /// <summary>Netpbm (P1-P6) and PFM (PF, Pf): whitespace-separated width and height after the magic, # comments allowed.</summary>
    private static (int, int)? Pnm(ReadOnlySpan<byte> data)
    {
        var position = 2;
        var width = NextNumber(data, ref position);
        var height = NextNumber(data, ref position);
        return width is { } w && height is { } h ? (Clamp(w), Clamp(h)) : null;
    }

    private static long? NextNumber(ReadOnlySpan<byte> data, ref int position)
    {
        while (position < data.Length)
        {
            if (data[position] == (byte)'#')
            {
                while (position < data.Length && data[position] != (byte)'\n') position++;
            }
            else if (char.IsWhiteSpace((char)data[position])) position++;
            else break;
        }
        long value = 0;
        var digits = 0;
        while (position < data.Length && data[position] is >= (byte)'0' and <= (byte)'9' && digits < 12)
        {
            value = value * 10 + (data[position++] - '0');
            digits++;
        }
        return digits > 0 ? value : null;
    }

    private static (int, int)? Pam(ReadOnlySpan<byte> data)
    {
        var header = Encoding.ASCII.GetString(data[..Math.Min(data.Length, 4096)]);
        long width = -1, height = -1;
        foreach (var line in header.Split('\n'))
        {
            var parts = line.Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 1 && parts[0] == "ENDHDR") break;
            if (parts.Length == 2 && long.TryParse(parts[1], out var value))
            {
                if (parts[0] == "WIDTH") width = value;
                if (parts[0] == "HEIGHT") height = value;
            }
        }
        return width >= 0 && height >= 0 ? (Clamp(width), Clamp(height)) : null;
    }

    /// <summary>Header lines up to an empty one, then a resolution line such as <c>-Y 480 +X 640</c>.</summary>
    private static (int, int)? RadianceHdr(ReadOnlySpan<byte> data)
    {
        var header = Encoding.ASCII.GetString(data[..Math.Min(data.Length, 8192)]);
        var end = header.IndexOf("\n\n", StringComparison.Ordinal);
        if (end < 0) return null;
        var lineEnd = header.IndexOf('\n', end + 2);
        if (lineEnd < 0) return null;
        var parts = header[(end + 2)..lineEnd].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 4 || !long.TryParse(parts[1], out var first) || !long.TryParse(parts[3], out var second)) return null;
        // The axis named first is the slower one: -Y h +X w is the common order, +X w -Y h a rotated one.
        return parts[0].EndsWith('Y') ? (Clamp(second), Clamp(first)) : (Clamp(first), Clamp(second));
    }

    /// <summary>The header's attributes (name, type, size, value) up to its end, for <c>dataWindow</c> (box2i).</summary>
    private static (int, int)? OpenExr(ReadOnlySpan<byte> data)
    {
        var position = 8;
        while (position < data.Length && data[position] != 0)
        {
            var nameEnd = data[position..].IndexOf((byte)0);
            if (nameEnd < 0) return null;
            var name = data.Slice(position, nameEnd);
            position += nameEnd + 1;
            var typeEnd = data[position..].IndexOf((byte)0);
            if (typeEnd < 0) return null;
            position += typeEnd + 1;
            if (position + 4 > data.Length) return null;
            var size = BinaryPrimitives.ReadInt32LittleEndian(data[position..]);
            position += 4;
            if (size < 0 || position + size > data.Length) return null;
            if (name.SequenceEqual("dataWindow"u8) && size == 16)
            {
                var box = data.Slice(position, 16);
                long width = (long)BinaryPrimitives.ReadInt32LittleEndian(box[8..]) - BinaryPrimitives.ReadInt32LittleEndian(box) + 1;
                long height = (long)BinaryPrimitives.ReadInt32LittleEndian(box[12..]) - BinaryPrimitives.ReadInt32LittleEndian(box[4..]) + 1;
                return (Clamp(width), Clamp(height));
            }
            position += size;
        }
        return null;
    }

    /// <summary>JP2 boxes: the image header (ihdr, inside jp2h) holds height then width; a codestream's SIZ marker is read too.</summary>
    private static (int, int)? Jp2(ReadOnlySpan<byte> data)
    {
        var at = data.IndexOf("ihdr"u8);
        if (at >= 4 && at + 12 <= data.Length)
        {
            return (Clamp(BinaryPrimitives.ReadUInt32BigEndian(data[(at + 8)..])), Clamp(BinaryPrimitives.ReadUInt32BigEndian(data[(at + 4)..])));
        }
        var codestream = data.IndexOf(new byte[] { 0xFF, 0x4F, 0xFF, 0x51 });
        return codestream >= 0 ? J2kCodestream(data, codestream + 4) : null;
    }

    /// <summary>The SIZ segment after SOC: Lsiz, Rsiz, then Xsiz, Ysiz, XOsiz, YOsiz.</summary>
    private static (int, int)? J2kCodestream(ReadOnlySpan<byte> data, int siz)
    {
        if (siz + 20 > data.Length) return null;
        var x = (long)BinaryPrimitives.ReadUInt32BigEndian(data[(siz + 4)..]);
        var y = (long)BinaryPrimitives.ReadUInt32BigEndian(data[(siz + 8)..]);
        var xOffset = (long)BinaryPrimitives.ReadUInt32BigEndian(data[(siz + 12)..]);
        var yOffset = (long)BinaryPrimitives.ReadUInt32BigEndian(data[(siz + 16)..]);
        return (Clamp(x - xOffset), Clamp(y - yOffset));
    }

    /// <summary>HEIF and AVIF: the largest image spatial extent ('ispe': version and flags, width, height).</summary>
    private static (int, int)? Heif(ReadOnlySpan<byte> data)
    {
        (int, int)? largest = null;
        var rest = data;
        var offset = 0;
        while (rest.IndexOf("ispe"u8) is var at and >= 0)
        {
            var start = offset + at + 8;
            if (start + 8 > data.Length) break;
            var width = Clamp(BinaryPrimitives.ReadUInt32BigEndian(data[start..]));
            var height = Clamp(BinaryPrimitives.ReadUInt32BigEndian(data[(start + 4)..]));
            if (largest is not var (w, h) || (long)width * height > (long)w * h) largest = (width, height);
            offset += at + 4;
            rest = data[offset..];
        }
        return largest;
    }

    private static bool SetOpenCvLimit()
    {
        NativeEnvironment.SetDefault("OPENCV_IO_MAX_IMAGE_PIXELS", OpenCvPixelLimit.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return true;
    }
}
