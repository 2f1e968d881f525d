using System.Diagnostics;

using FerSharp.Inference;

using OpenCvSharp;

namespace FerSharp.Tests;

/// <summary>
/// Random bytes, truncations and bit flips of real PNG, JPEG, TIFF and WebP files through
/// <see cref="EmotionRecognizer.Recognize(byte[])"/>: each ends in a result or in the one documented exception
/// (<see cref="InvalidDataException"/>), never a crash or a hang, and memory stays bounded.
/// </summary>
[Collection("torch")]
public sealed class ImageFuzzTests
{
    [Fact]
    public void Broken_images_end_in_a_result_or_InvalidDataException()
    {
        using var recognizer = EmotionRecognizer.Load("fer2013-realtime");
        using var photo = new Mat(96 * 2, 128 * 2, MatType.CV_8UC3);
        Cv2.Randu(photo, new Scalar(0, 0, 0), new Scalar(255, 255, 255));
        using var smooth = photo.GaussianBlur(new Size(9, 9), 3);
        var seeds = new[] { ".png", ".jpg", ".tiff", ".webp" }.Select(ext => smooth.ImEncode(ext)).ToList();
        var random = new Random(20261206);
        var cases = 0;
        var rejected = 0;
        var watch = Stopwatch.StartNew();
        var startMemory = Environment.WorkingSet;
        var peak = startMemory;
        for (var i = 0; i < 300; i++)
        {
            var seed = seeds[i % seeds.Count];
            byte[] input = (i / seeds.Count % 3) switch
            {
                0 => seed[..random.Next(1, seed.Length)], // truncated
                1 => Flipped(seed, random),                // bits flipped, header included
                _ => Enumerable.Range(0, random.Next(1, 4096)).Select(_ => (byte)random.Next(256)).ToArray(),
            };
            var one = Stopwatch.StartNew();
            try
            {
                _ = recognizer.Recognize(input);
            }
            catch (InvalidDataException)
            {
                rejected++;
            }
            // A hang guard, not a speed check: a case takes milliseconds, minutes only if a decoder loops.
            Assert.True(one.Elapsed < TimeSpan.FromMinutes(2), $"case {i} took {one.Elapsed}");
            cases++;
            peak = Math.Max(peak, Environment.WorkingSet);
        }
        Assert.Equal(300, cases);
        Assert.True(rejected > 50, $"only {rejected} of 300 broken inputs were refused: is the input really broken?");
        // Bounded: a decoder tricked into a huge allocation would show here (the images are 256x192).
        Assert.True(peak - startMemory < 1_000_000_000, $"working set grew by {(peak - startMemory) / 1e6:F0} MB");
    }

    private static byte[] Flipped(byte[] data, Random random)
    {
        var copy = (byte[])data.Clone();
        for (var k = random.Next(1, 9); k > 0; k--)
        {
            // Half the flips land in the first 64 bytes, where the headers and their sizes are.
            var at = random.Next(2) == 0 ? random.Next(Math.Min(64, copy.Length)) : random.Next(copy.Length);
            copy[at] ^= (byte)(1 << random.Next(8));
        }
        return copy;
    }
}
