using TorchSharp.Modules;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// In eval mode a batch norm is an affine map per channel, so <c>bn(conv(x)) = conv'(x)</c> with
/// <c>W' = W·γ/√(var+ε)</c> and <c>b' = (b − mean)·γ/√(var+ε) + β</c> (the same for a linear layer): one pass
/// over the activations fewer. Shared by the TorchSharp inference view and the ONNX export so both compute
/// the same weights.
/// </summary>
internal static class BatchNormFolding
{
    /// <summary>Whether <paramref name="norm"/> has the statistics and affine parameters folding needs.</summary>
    public static bool CanFold(BatchNorm norm) =>
        norm.weight is not null && norm.bias is not null && norm.running_mean is not null && norm.running_var is not null;

    /// <summary>New tensors, detached from any dispose scope and owned by the caller: the folded weight and bias.</summary>
    public static (Tensor Weight, Tensor Bias) Fold(Tensor weight, Tensor? bias, BatchNorm norm)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var scale = norm.weight!.div(norm.running_var!.add(norm.eps).sqrt());
        var perOutput = new long[weight.dim()];
        Array.Fill(perOutput, 1L);
        perOutput[0] = -1;
        var foldedWeight = weight.mul(scale.view(perOutput)).contiguous();
        var shift = bias is null ? norm.running_mean!.neg() : bias.sub(norm.running_mean!);
        var foldedBias = shift.mul(scale).add(norm.bias!);
        // Detached: the result outlives whatever scope the first prediction happens to run in.
        return (foldedWeight.DetachFromDisposeScope(), foldedBias.DetachFromDisposeScope());
    }
}
