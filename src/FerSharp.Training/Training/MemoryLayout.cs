using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// The NHWC ("channels-last") layout without a memory-format API: a tensor permuted to NHWC, made contiguous
/// and permuted back has NCHW shape with NHWC strides, which libtorch's convolutions, batch norms and pools
/// keep in their outputs. TorchSharp 0.107 has no memory-format argument.
/// </summary>
public static class MemoryLayout
{
    /// <summary>The same values as a new NCHW-shaped tensor with NHWC strides.</summary>
    public static Tensor ChannelsLast(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var nhwc = tensor.permute(0, 2, 3, 1);
        using var dense = nhwc.contiguous();
        return dense.permute(0, 3, 1, 2);
    }

    /// <summary>Re-lays every 4-D parameter (the convolution weights) in place; later copy_ calls keep the layout.</summary>
    public static void ToChannelsLast(nn.Module network)
    {
        ArgumentNullException.ThrowIfNull(network);
        using var noGrad = no_grad();
        foreach (var (_, parameter) in network.named_parameters())
        {
            if (parameter.dim() != 4) continue;
            using var relaid = ChannelsLast(parameter);
            parameter.set_(relaid);
        }
    }
}
