using TorchSharp;
using TorchSharp.Modules;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// An inference-only view of a trained <see cref="TorchSharp.Modules.Sequential"/> network in which each
/// batch norm that directly follows a convolution or linear layer is folded into that layer's weights
/// (<see cref="BatchNormFolding"/>), and dropout layers are left out: the same output with one pass over the
/// activations fewer, which matters at batch 1 where each small op costs about as much as the arithmetic.
/// ReLUs run in place on intermediate results this view allocated.
/// (Moving each ReLU after the max-pool that follows it, which gives the same result on a quarter of the
/// values, was measured slower in libtorch 2.10.)
/// </summary>
/// <remarks>
/// The folded weights are snapshots: the view must be rebuilt if the network's parameters change.
/// Layers it cannot fold (residual blocks, anything not directly followed by a batch norm) are borrowed and
/// called as they are; only the folded tensors belong to this object.
/// </remarks>
public sealed class FoldedNetwork : IDisposable
{
    private delegate Tensor Step(Tensor input);

    private readonly IReadOnlyList<Step> _steps;
    private readonly List<Tensor> _ownedTensors;

    private FoldedNetwork(IReadOnlyList<Step> steps, List<Tensor> ownedTensors, int foldedBatchNorms)
    {
        _steps = steps;
        _ownedTensors = ownedTensors;
        FoldedBatchNorms = foldedBatchNorms;
    }

    /// <summary>How many batch-norm layers were folded away.</summary>
    public int FoldedBatchNorms { get; }

    /// <summary>
    /// The folded view of <paramref name="network"/>, or null when it is not a <c>Sequential</c> (nothing to walk).
    /// The network must be in eval mode when predictions are made; the view always behaves as in eval mode.
    /// </summary>
    public static FoldedNetwork? TryCreate(nn.Module<Tensor, Tensor> network)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (network is not Sequential sequential) return null;
        var layers = sequential.children().ToList();
        var steps = new List<Step>();
        var owned = new List<Tensor>();
        var folded = 0;
        // Whether the current result lives in memory this view allocated, so a ReLU may overwrite it: not
        // the caller's input, nor a view of it (a leading Flatten), nor whatever an unknown module returns.
        var fresh = false;
        using var noGrad = no_grad();
        for (var i = 0; i < layers.Count; i++)
        {
            var layer = layers[i];
            var next = i + 1 < layers.Count ? layers[i + 1] as BatchNorm : null;
            if (next != null && TryFold(layer, next, owned) is { } fused)
            {
                steps.Add(fused);
                fresh = true;
                folded++;
                i++; // the batch norm is part of the fused step
            }
            else if (layer is SeededDropout or Dropout or Dropout2d)
            {
                // Identity at inference.
            }
            else if (layer is ReLU)
            {
                // In place on a result this view allocated, the step allocates nothing.
                // Forward disposes the input handle if relu_ hands back a new one for the same memory.
                steps.Add(fresh ? x => x.relu_() : x => nn.functional.relu(x));
                fresh = true;
            }
            else if (layer is nn.Module<Tensor, Tensor> module)
            {
                steps.Add(module.call);
                // Flatten returns a view, as fresh as its input; these others always allocate their output.
                fresh = layer is Flatten ? fresh : layer is Conv2d or Linear or MaxPool2d or AdaptiveAvgPool2d or BatchNorm or IResidualModule;
            }
            else
            {
                foreach (var tensor in owned) tensor.Dispose();
                return null;
            }
        }
        return new FoldedNetwork(steps, owned, folded);
    }

    /// <summary>Logits for an already pre-processed float input, as the network's own forward would give in eval mode.</summary>
    public Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var noGrad = no_grad();
        var x = input;
        var owned = false;
        foreach (var step in _steps)
        {
            var y = step(x);
            if (owned && !ReferenceEquals(x, y)) x.Dispose();
            x = y;
            owned = true;
        }
        return owned ? x : x.alias();
    }

    public void Dispose()
    {
        foreach (var tensor in _ownedTensors) tensor.Dispose();
        _ownedTensors.Clear();
    }

    private static Step? TryFold(nn.Module layer, BatchNorm norm, List<Tensor> owned)
    {
        if (!BatchNormFolding.CanFold(norm)) return null;
        switch (layer)
        {
            case Conv2d conv when !conv.transposed && conv.padding_mode == PaddingModes.Zeros
                                  && conv.padding_type is null && conv.padding is { } padding:
                {
                    var (weight, bias) = Fold(conv.weight!, conv.bias, norm, owned);
                    var stride = conv.stride;
                    var dilation = conv.dilation;
                    var groups = conv.groups;
                    return x => nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups);
                }
            case Linear linear:
                {
                    var (weight, bias) = Fold(linear.weight!, linear.bias, norm, owned);
                    return x => nn.functional.linear(x, weight, bias);
                }
            default:
                return null;
        }
    }

    private static (Tensor Weight, Tensor Bias) Fold(Tensor weight, Tensor? bias, BatchNorm norm, List<Tensor> owned)
    {
        var result = BatchNormFolding.Fold(weight, bias, norm);
        owned.Add(result.Weight);
        owned.Add(result.Bias);
        return result;
    }
}
