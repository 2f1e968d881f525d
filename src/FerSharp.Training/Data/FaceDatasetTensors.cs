using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Data;

/// <summary>A dataset's faces and labels as libtorch tensors, for training and evaluation.</summary>
public static class FaceDatasetTensors
{
    /// <summary>The faces as uint8 [N,1,48,48]; the caller disposes it.</summary>
    public static Tensor ToTensor(this FaceDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return tensor(data.Pixels.ToArray(), [data.Count, 1, FaceDataset.ImageSize, FaceDataset.ImageSize], ScalarType.Byte);
    }

    /// <summary>The class indices as int64 [N]; the caller disposes it.</summary>
    public static Tensor LabelsTensor(this FaceDataset data)
    {
        ArgumentNullException.ThrowIfNull(data);
        return tensor(data.Labels.Select(l => (long)l).ToArray(), [data.Count], ScalarType.Int64);
    }
}
