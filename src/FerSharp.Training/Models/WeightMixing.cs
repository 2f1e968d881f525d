using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// Mixes one network's weights into another of the same architecture, in place. Shared by the training's
/// EMA (a step per batch) and <see cref="WeightAveraging"/> (a running mean over packages), so both treat
/// non-float state the same way.
/// </summary>
internal static class WeightMixing
{
    /// <summary>
    /// target = keep · target + (1 − keep) · source for every floating tensor of the state dict; integer
    /// tensors (counters such as BatchNorm's num_batches_tracked) cannot be mixed and take the source's value.
    /// </summary>
    public static void MixInto(nn.Module target, nn.Module source, double keep)
    {
        using var noGrad = no_grad();
        var values = source.state_dict();
        foreach (var (name, tensor) in target.state_dict())
        {
            var value = values[name];
            if (tensor.is_floating_point())
            {
                tensor.mul_(keep).add_(value, alpha: 1 - keep);
            }
            else
            {
                tensor.copy_(value);
            }
        }
    }
}
