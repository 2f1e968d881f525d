using TorchSharp;

using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace FerSharp.Models;

/// <summary>A named network design: builds a fresh module that maps [B,1,48,48] to [B,classes] logits.</summary>
public sealed record Architecture(string Name, string Summary, Func<int, Module<Tensor, Tensor>> Build)
{
    /// <summary>A fresh module with <paramref name="classes"/> outputs; fewer than two would fail deep in libtorch.</summary>
    public Module<Tensor, Tensor> Create(int classes)
    {
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), classes, "a classifier needs at least 2 classes");
        return Build(classes);
    }
}

/// <summary>The architectures <c>fer train --arch</c> can build, by name.</summary>
public static class ModelRegistry
{
    private static readonly Architecture[] Known =
    [
        new("seed-cnn",
            "The seed's CNN: Conv32-Conv64-Pool-Drop, Conv128-Pool-Conv128-Pool-Drop, FC1024-Drop, FC (Keras-tutorial design, ~2.3M params).",
            SeedCnn.Create),
        new("vgg-bn",
            "VGG-style: four blocks of two 3x3 Conv+BN+ReLU (32-64-128-256 channels) + MaxPool, FC256+BN+Dropout, FC.",
            classes => VggBn.Create(classes, [32, 64, 128, 256])),
        new("vgg-wide",
            "VGG-bn at twice the width (64-128-256-512 channels, the classic VGG widths), FC256+BN+Dropout, FC: ~4x the FLOPs for the accuracy target.",
            classes => VggBn.Create(classes, [64, 128, 256, 512])),
        new("resnet-small",
            "Small ResNet: stem Conv32, residual stages 32-64-128 (2 basic blocks each, BN), global average pool, dropout, FC.",
            ResNetSmall.Create),
        new("mini-xception",
            "Compact real-time net in the spirit of mini-Xception: depthwise-separable residual blocks, global average pool (~150k params).",
            MiniXception.Create),
        new("fast-cnn",
            "Real-time net for batch-1 CPU latency: one 3x3 Conv+BN+ReLU per resolution (32-64-128-256) + MaxPool, dropout, FC; dense convolutions only (~0.7M params).",
            classes => FastCnn.Create(classes, [32, 64, 128, 256])),
        new("fast-cnn-slim",
            "fast-cnn with its last two stages narrowed (32-64-96-192): about a quarter less work per face; start it from a trained fast-cnn with 'fer models prune'.",
            classes => FastCnn.Create(classes, [32, 64, 96, 192])),
    ];

    public static IReadOnlyList<Architecture> All => Known;

    public static bool Contains(string name) =>
        Known.Any(a => string.Equals(a.Name, name, StringComparison.OrdinalIgnoreCase));

    public static Architecture Get(string name) =>
        Known.FirstOrDefault(a => string.Equals(a.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown architecture '{name}'; known: {string.Join(", ", Known.Select(a => a.Name))}");

    public static Module<Tensor, Tensor> Create(string name, int classes) => Get(name).Create(classes);
}

/// <summary>
/// The seed's CNN as published with the project brief: valid 3x3 convolutions, ReLU, 2x2 max-pooling,
/// dropout 0.25 after the conv blocks and 0.5 before the classifier. Softmax is applied at inference.
/// </summary>
internal static class SeedCnn
{
    public static Module<Tensor, Tensor> Create(int classes) => Sequential(
        ("conv1", Conv2d(1, 32, 3)), ("relu1", ReLU()),
        ("conv2", Conv2d(32, 64, 3)), ("relu2", ReLU()),
        ("pool1", MaxPool2d(2)), ("drop1", SeededLayers.Dropout(0.25)),
        ("conv3", Conv2d(64, 128, 3)), ("relu3", ReLU()),
        ("pool2", MaxPool2d(2)),
        ("conv4", Conv2d(128, 128, 3)), ("relu4", ReLU()),
        ("pool3", MaxPool2d(2)), ("drop2", SeededLayers.Dropout(0.25)),
        ("flatten", Flatten()),
        ("fc1", Linear(128 * 4 * 4, 1024)), ("relu5", ReLU()), ("drop3", SeededLayers.Dropout(0.5)),
        ("fc2", Linear(1024, classes)));
}

internal static class ConvLayers
{
    /// <summary>
    /// VGG-style stages on a 1-channel input: per width, <paramref name="convsPerStage"/> x (3x3 Conv + BN + ReLU),
    /// 2x2 MaxPool, then the stage's dropout if any. Layer names (<c>b{stage}_conv{i}</c>, <c>_bn</c>, <c>_relu</c>,
    /// <c>_pool</c>, <c>_drop</c>; no index with one conv per stage) are the keys of saved weights.
    /// </summary>
    public static List<(string, Module<Tensor, Tensor>)> PooledStages(int[] widths, int convsPerStage, Func<int, Module<Tensor, Tensor>>? dropout)
    {
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        long inChannels = 1;
        for (var stage = 1; stage <= widths.Length; stage++)
        {
            for (var i = 1; i <= convsPerStage; i++)
            {
                var suffix = convsPerStage == 1 ? "" : $"{i}";
                // No conv bias: the batch norm after it supplies one.
                layers.Add(($"b{stage}_conv{suffix}", Conv2d(inChannels, widths[stage - 1], 3, padding: 1, bias: false)));
                layers.Add(($"b{stage}_bn{suffix}", BatchNorm2d(widths[stage - 1])));
                layers.Add(($"b{stage}_relu{suffix}", ReLU()));
                inChannels = widths[stage - 1];
            }
            layers.Add(($"b{stage}_pool", MaxPool2d(2)));
            if (dropout != null) layers.Add(($"b{stage}_drop", dropout(stage)));
        }
        return layers;
    }
}

internal static class VggBn
{
    public static Module<Tensor, Tensor> Create(int classes, int[] widths)
    {
        var layers = ConvLayers.PooledStages(widths, convsPerStage: 2, stage => SeededLayers.Dropout2d(0.1 * stage));
        layers.Add(("flatten", Flatten()));
        // Four 2x2 pools take 48x48 to 3x3.
        layers.Add(("fc1", Linear(widths[^1] * 3 * 3, 256, hasBias: false)));
        layers.Add(("fc1_bn", BatchNorm1d(256)));
        layers.Add(("fc1_relu", ReLU()));
        layers.Add(("fc1_drop", SeededLayers.Dropout(0.5)));
        layers.Add(("fc2", Linear(256, classes)));
        return Sequential(layers);
    }
}

/// <summary>
/// A block computing <c>branch(x) + shortcut(x)</c> (<c>x</c> itself when there is no shortcut), then a ReLU if
/// <see cref="ReluAfterSum"/>: the shape the ONNX export needs to write a residual block as a graph.
/// </summary>
internal interface IResidualModule
{
    TorchSharp.Modules.Sequential Branch { get; }

    TorchSharp.Modules.Sequential? Shortcut { get; }

    bool ReluAfterSum { get; }
}

internal sealed class ResidualBlock : Module<Tensor, Tensor>, IResidualModule
{
    private readonly Module<Tensor, Tensor> _body;
    private readonly Module<Tensor, Tensor>? _shortcut;

    public ResidualBlock(string name, long inChannels, long outChannels, long stride) : base(name)
    {
        _body = Sequential(
            ("conv1", Conv2d(inChannels, outChannels, 3, stride: stride, padding: 1, bias: false)),
            ("bn1", BatchNorm2d(outChannels)),
            ("relu1", ReLU()),
            ("conv2", Conv2d(outChannels, outChannels, 3, padding: 1, bias: false)),
            ("bn2", BatchNorm2d(outChannels)));
        if (stride != 1 || inChannels != outChannels)
        {
            _shortcut = Sequential(
                ("conv", Conv2d(inChannels, outChannels, 1, stride: stride, bias: false)),
                ("bn", BatchNorm2d(outChannels)));
        }
        RegisterComponents();
    }

    // Properties, not renamed fields: the field names are the keys of saved weights.
    public TorchSharp.Modules.Sequential Branch => (TorchSharp.Modules.Sequential)_body;

    public TorchSharp.Modules.Sequential? Shortcut => (TorchSharp.Modules.Sequential?)_shortcut;

    public bool ReluAfterSum => true;

    public override Tensor forward(Tensor input)
    {
        using var body = _body.call(input);
        using var shortcut = _shortcut?.call(input);
        return functional.relu(body.AddTensor(shortcut ?? input));
    }
}

internal static class ResNetSmall
{
    // Widths 32-64-128 rather than ResNet-18's 64-128-256: at 48x48 the wide version costs ~1.9 GFLOPs
    // per face (about 25 img/s of training on 2 cores); this one is ~4x cheaper.
    public static Module<Tensor, Tensor> Create(int classes) => Sequential(
        ("stem_conv", Conv2d(1, 32, 3, padding: 1, bias: false)),
        ("stem_bn", BatchNorm2d(32)),
        ("stem_relu", ReLU()),
        ("stage1_block1", new ResidualBlock("stage1_block1", 32, 32, 1)),
        ("stage1_block2", new ResidualBlock("stage1_block2", 32, 32, 1)),
        ("stage2_block1", new ResidualBlock("stage2_block1", 32, 64, 2)),
        ("stage2_block2", new ResidualBlock("stage2_block2", 64, 64, 1)),
        ("stage3_block1", new ResidualBlock("stage3_block1", 64, 128, 2)),
        ("stage3_block2", new ResidualBlock("stage3_block2", 128, 128, 1)),
        ("pool", AdaptiveAvgPool2d(1)),
        ("flatten", Flatten()),
        ("drop", SeededLayers.Dropout(0.3)),
        ("fc", Linear(128, classes)));
}

/// <summary>Depthwise-separable convolution: a per-channel 3x3 followed by a 1x1 mixing channels.</summary>
internal sealed class SeparableBlock : Module<Tensor, Tensor>, IResidualModule
{
    private readonly Module<Tensor, Tensor> _branch;
    private readonly Module<Tensor, Tensor> _shortcut;

    public SeparableBlock(string name, long inChannels, long outChannels) : base(name)
    {
        _branch = Sequential(
            ("dw1", Conv2d(inChannels, inChannels, 3, padding: 1, groups: inChannels, bias: false)),
            ("pw1", Conv2d(inChannels, outChannels, 1, bias: false)),
            ("bn1", BatchNorm2d(outChannels)),
            ("relu1", ReLU()),
            ("dw2", Conv2d(outChannels, outChannels, 3, padding: 1, groups: outChannels, bias: false)),
            ("pw2", Conv2d(outChannels, outChannels, 1, bias: false)),
            ("bn2", BatchNorm2d(outChannels)),
            ("pool", MaxPool2d(3, stride: 2, padding: 1)));
        _shortcut = Sequential(
            ("conv", Conv2d(inChannels, outChannels, 1, stride: 2, bias: false)),
            ("bn", BatchNorm2d(outChannels)));
        RegisterComponents();
    }

    public TorchSharp.Modules.Sequential Branch => (TorchSharp.Modules.Sequential)_branch;

    public TorchSharp.Modules.Sequential? Shortcut => (TorchSharp.Modules.Sequential)_shortcut;

    public bool ReluAfterSum => false;

    public override Tensor forward(Tensor input)
    {
        using var branch = _branch.call(input);
        using var shortcut = _shortcut.call(input);
        return branch.AddTensor(shortcut);
    }
}

internal static class MiniXception
{
    public static Module<Tensor, Tensor> Create(int classes) => Sequential(
        ("stem_conv1", Conv2d(1, 16, 3, padding: 1, bias: false)),
        ("stem_bn1", BatchNorm2d(16)),
        ("stem_relu1", ReLU()),
        ("stem_conv2", Conv2d(16, 16, 3, padding: 1, bias: false)),
        ("stem_bn2", BatchNorm2d(16)),
        ("stem_relu2", ReLU()),
        ("block1", new SeparableBlock("block1", 16, 32)),
        ("block2", new SeparableBlock("block2", 32, 64)),
        ("block3", new SeparableBlock("block3", 64, 128)),
        ("block4", new SeparableBlock("block4", 128, 192)),
        ("head_conv", Conv2d(192, classes, 3, padding: 1)),
        ("pool", AdaptiveAvgPool2d(1)),
        ("flatten", Flatten()));
}

/// <summary>
/// Built for latency at batch 1 rather than for FLOPs: libtorch's CPU depthwise convolutions and every
/// extra small op cost more per FLOP than a dense 3x3 convolution, so this net uses few, dense layers
/// (one per resolution) and pools early; mini-xception has a third of its FLOPs but is slower per face.
/// </summary>
internal static class FastCnn
{
    public static Module<Tensor, Tensor> Create(int classes, int[] widths)
    {
        var layers = ConvLayers.PooledStages(widths, convsPerStage: 1, dropout: null);
        layers.Add(("flatten", Flatten()));
        layers.Add(("drop", SeededLayers.Dropout(0.4)));
        layers.Add(("fc1", Linear(widths[^1] * 3 * 3, 128)));
        layers.Add(("fc1_relu", ReLU()));
        layers.Add(("fc2", Linear(128, classes)));
        return Sequential(layers);
    }
}
