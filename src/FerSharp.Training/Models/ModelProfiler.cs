using TorchSharp;
using TorchSharp.Modules;

using static TorchSharp.torch;

namespace FerSharp.Models;

public sealed record LayerProfile(string Name, string Type, long[] OutputShape, long Parameters, long Flops);

/// <summary>Size and cost of a network for one 48x48 image.</summary>
public sealed record ModelProfile(long Parameters, long Flops, IReadOnlyList<LayerProfile> Layers);

/// <summary>
/// Measures parameters and forward FLOPs (multiply-add = 2) by running one image through the network with
/// hooks on every convolution and linear layer, so custom blocks are counted without hand-written formulas.
/// </summary>
public static class ModelProfiler
{
    public static ModelProfile Profile(nn.Module<Tensor, Tensor> network)
    {
        ArgumentNullException.ThrowIfNull(network);
        var layers = new List<LayerProfile>();
        var removers = new List<IDisposable>();
        foreach (var (name, module) in network.named_modules())
        {
            if (module is not nn.Module<Tensor, Tensor> leaf || module.children().Any())
            {
                continue;
            }
            var layerName = name;
            var hook = leaf switch
            {
                Conv2d or Linear or BatchNorm2d or BatchNorm1d or MaxPool2d or AdaptiveAvgPool2d or ReLU or SeededDropout or Flatten =>
                    leaf.register_forward_hook((m, input, output) =>
                    {
                        var parameters = m.parameters(recurse: false).Sum(p => p.numel());
                        layers.Add(new LayerProfile(layerName, m is SeededDropout ? m.GetName() : m.GetType().Name, output.shape, parameters, FlopsOf(m, input, output)));
                        return output;
                    }),
                _ => null,
            };
            if (hook is IDisposable disposable) removers.Add(disposable);
        }
        var wasTraining = network.training;
        network.eval();
        using (no_grad())
        using (var input = zeros(1, 1, 48, 48))
        using (var output = network.call(input))
        {
        }
        if (wasTraining) network.train();
        foreach (var remover in removers) remover.Dispose();
        return new ModelProfile(network.parameters().Sum(p => p.numel()), layers.Sum(l => l.Flops), layers);
    }

    private static long FlopsOf(nn.Module module, Tensor input, Tensor output) => module switch
    {
        Conv2d conv => 2 * output.numel() * (input.shape[1] / conv.groups) * conv.weight!.shape[2] * conv.weight.shape[3],
        Linear linear => 2 * output.numel() * linear.weight!.shape[1],
        _ => 0,
    };
}
