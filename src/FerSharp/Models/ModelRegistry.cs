using TorchSharp;

using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace FerSharp.Models;

/// <summary>A named network design: builds a fresh module that maps [B,1,48,48] to [B,classes] logits.</summary>
public sealed record Architecture(string Name, string Summary, Func<int, Module<Tensor, Tensor>> Create);

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
            VggBn.Create),
        new("resnet-small",
            "Small ResNet: stem Conv32, residual stages 32-64-128 (2 basic blocks each, BN), global average pool, dropout, FC.",
            ResNetSmall.Create),
        new("mini-xception",
            "Compact real-time net in the spirit of mini-Xception: depthwise-separable residual blocks, global average pool (~150k params).",
            MiniXception.Create),
    ];

    public static IReadOnlyList<Architecture> All => Known;

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

internal static class VggBn
{
    public static Module<Tensor, Tensor> Create(int classes)
    {
        var layers = new List<(string, Module<Tensor, Tensor>)>();
        var inChannels = 1;
        var block = 1;
        foreach (var channels in new[] { 32, 64, 128, 256 })
        {
            for (var i = 1; i <= 2; i++)
            {
                layers.Add(($"b{block}_conv{i}", Conv2d(inChannels, channels, 3, padding: 1, bias: false)));
                layers.Add(($"b{block}_bn{i}", BatchNorm2d(channels)));
                layers.Add(($"b{block}_relu{i}", ReLU()));
                inChannels = channels;
            }
            layers.Add(($"b{block}_pool", MaxPool2d(2)));
            layers.Add(($"b{block}_drop", SeededLayers.Dropout2d(0.1 * block)));
            block++;
        }
        layers.Add(("flatten", Flatten()));
        layers.Add(("fc1", Linear(256 * 3 * 3, 256, hasBias: false)));
        layers.Add(("fc1_bn", BatchNorm1d(256)));
        layers.Add(("fc1_relu", ReLU()));
        layers.Add(("fc1_drop", SeededLayers.Dropout(0.5)));
        layers.Add(("fc2", Linear(256, classes)));
        return Sequential(layers);
    }
}

internal sealed class ResidualBlock : Module<Tensor, Tensor>
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

    public override Tensor forward(Tensor input)
    {
        using var body = _body.call(input);
        using var shortcut = _shortcut?.call(input);
        return functional.relu(body + (shortcut ?? input));
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
internal sealed class SeparableBlock : Module<Tensor, Tensor>
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

    public override Tensor forward(Tensor input)
    {
        using var branch = _branch.call(input);
        using var shortcut = _shortcut.call(input);
        return branch + shortcut;
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
