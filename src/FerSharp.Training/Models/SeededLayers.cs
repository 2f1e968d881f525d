using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// Dropout that draws its mask from a generator the trainer binds, not from libtorch's process-wide
/// generator. The global generator is shared by every thread of the process (parallel tests, a server
/// training beside inference), so a run that used it could not be reproduced or resumed exactly.
/// </summary>
public sealed class SeededDropout : nn.Module<Tensor, Tensor>
{
    private readonly double _probability;
    private readonly bool _channelwise;

    /// <param name="probability">Chance of zeroing an element (or a whole channel).</param>
    /// <param name="channelwise">Drop whole feature maps of a [B,C,H,W] input, as <c>Dropout2d</c> does.</param>
    public SeededDropout(double probability, bool channelwise = false)
        : base(channelwise ? "Dropout2d" : "Dropout")
    {
        if (probability is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(probability), "dropout probability must be in [0, 1)");
        _probability = probability;
        _channelwise = channelwise;
    }

    public double Probability => _probability;

    /// <summary>Where training-time masks come from; null uses the global generator.</summary>
    internal Generator? Generator { get; set; }

    public override Tensor forward(Tensor input)
    {
        if (!training || _probability == 0) return input.alias();
        var maskShape = _channelwise ? new[] { input.shape[0], input.shape[1], 1L, 1L } : input.shape;
        using var uniform = rand(maskShape, dtype: input.dtype, device: input.device, generator: Generator);
        using var keep = uniform.ge(_probability).to_type(input.dtype);
        using var scaled = keep.mul_(1.0 / (1.0 - _probability));
        return input.mul(scaled);
    }
}

/// <summary>Layer factories and helpers that keep every random draw of a training run on its own generators.</summary>
public static class SeededLayers
{
    public static SeededDropout Dropout(double probability) => new(probability);

    public static SeededDropout Dropout2d(double probability) => new(probability, channelwise: true);

    /// <summary>Routes every <see cref="SeededDropout"/> in <paramref name="model"/> to <paramref name="generator"/> until disposed.</summary>
    public static IDisposable BindDropout(nn.Module model, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        var layers = model.modules().OfType<SeededDropout>().ToList();
        foreach (var layer in layers) layer.Generator = generator;
        return new Unbinder(layers);
    }

    /// <summary>
    /// Re-draws conv and linear weights and biases with PyTorch's default scheme (Kaiming-uniform with
    /// a=√5, i.e. U(±1/√fan_in)) from <paramref name="generator"/>; batch norm keeps its fixed 1/0 start.
    /// </summary>
    public static void ResetParameters(nn.Module model, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(model);
        using var _ = no_grad();
        foreach (var module in model.modules())
        {
            var (weight, bias) = module switch
            {
                TorchSharp.Modules.Conv2d conv => (conv.weight, conv.bias),
                TorchSharp.Modules.Linear linear => (linear.weight, linear.bias),
                _ => (null, null),
            };
            if (weight is null) continue;
            var fanIn = weight.shape.Skip(1).Aggregate(1L, (a, b) => a * b);
            var bound = 1.0 / Math.Sqrt(fanIn);
            weight.uniform_(-bound, bound, generator);
            bias?.uniform_(-bound, bound, generator);
        }
    }

    private sealed class Unbinder(IReadOnlyList<SeededDropout> layers) : IDisposable
    {
        public void Dispose()
        {
            foreach (var layer in layers) layer.Generator = null;
        }
    }
}
