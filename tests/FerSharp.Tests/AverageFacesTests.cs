using FerSharp.Data;

using OpenCvSharp;

namespace FerSharp.Tests;

public class AverageFacesTests
{
    [Fact]
    public void Each_class_average_is_its_faces_mean_stretched_and_small_classes_are_left_out()
    {
        // Class 0: 3 faces, left half 0, 60 or 120 and right half 240: mean 60 | 240, stretched to 0 | 255.
        // Class 1: 1 face only, below the minimum of 2.
        var pixels = new byte[4 * FaceDataset.PixelsPerImage];
        for (var i = 0; i < 3; i++)
        {
            for (var p = 0; p < FaceDataset.PixelsPerImage; p++)
            {
                pixels[i * FaceDataset.PixelsPerImage + p] = (byte)(p % 48 < 24 ? 60 * i : 240);
            }
        }
        var faces = new FaceDataset(["left", "right"], pixels, [0, 0, 0, 1], [DataSplit.Training, DataSplit.Training, DataSplit.Training, DataSplit.Training]);

        var averages = AverageFaces.Compute(faces, minimumFaces: 2);

        var only = Assert.Single(averages);
        Assert.Equal("left", only.ClassName);
        Assert.Equal(3, only.FaceCount);
        Assert.Equal(0, only.Pixels[0]);
        Assert.Equal(255, only.Pixels[47]);
        Assert.Equal(0, only.Pixels[48 * 20 + 10]);
    }

    [Fact]
    public void The_scene_places_every_face_at_its_size_with_room_for_the_bars()
    {
        var face = new AverageFace("x", 500, Enumerable.Range(0, FaceDataset.PixelsPerImage).Select(p => (byte)(p % 256)).ToArray());
        using var scene = AverageFaces.Scene([face, face, face], side: 100);
        Assert.Equal(MatType.CV_8UC3, scene.Type());
        Assert.True(scene.Width >= 3 * 100 + 2 * 50, $"width {scene.Width}");
        Assert.True(scene.Height > 100);
        Assert.Throws<ArgumentException>(() => AverageFaces.Scene([]));
    }
}
