using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// Starts a network from another one trained on a different class list (FER2013's 7 classes to FER+'s 8):
/// every weight of the same shape is copied, and the output layer's rows are copied for the classes both lists
/// name, so only the new classes (contempt) start from random weights.
/// </summary>
public static class ClassHeadTransfer
{
    /// <summary>Loads <paramref name="source"/>'s weights into <paramref name="target"/>; returns the classes whose output rows came across.</summary>
    /// <exception cref="ArgumentException">A weight other than the output layer's differs in shape (not the same architecture).</exception>
    public static IReadOnlyList<string> LoadAcrossClasses(nn.Module<Tensor, Tensor> target, nn.Module<Tensor, Tensor> source,
        IReadOnlyList<string> sourceClasses, IReadOnlyList<string> targetClasses)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(sourceClasses);
        ArgumentNullException.ThrowIfNull(targetClasses);
        var from = source.state_dict();
        var to = target.state_dict();
        var shared = targetClasses.Where(sourceClasses.Contains).ToList();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var sourceIndex = sourceClasses.ToList();
        var targetIndex = targetClasses.ToList();
        foreach (var (name, weight) in to)
        {
            if (!from.TryGetValue(name, out var given))
            {
                throw new ArgumentException($"--init-from: the package has no weight '{name}'");
            }
            if (given.shape.SequenceEqual(weight.shape))
            {
                weight.copy_(given);
                continue;
            }
            var isHead = given.dim() == weight.dim() && given.shape[0] == sourceClasses.Count && weight.shape[0] == targetClasses.Count
                && given.shape.Skip(1).SequenceEqual(weight.shape.Skip(1));
            if (!isHead)
            {
                throw new ArgumentException($"--init-from: weight '{name}' has shape [{string.Join(",", given.shape)}] in the package and [{string.Join(",", weight.shape)}] here");
            }
            foreach (var cls in shared)
            {
                weight[targetIndex.IndexOf(cls)].copy_(given[sourceIndex.IndexOf(cls)]);
            }
        }
        return shared;
    }
}
