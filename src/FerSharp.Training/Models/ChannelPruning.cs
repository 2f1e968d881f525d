using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// Narrows a trained network of pooled 3x3 stages (<c>b{stage}_conv</c> + <c>b{stage}_bn</c>, or several numbered ones a
/// stage, then <c>fc1</c> on the flattened last stage) into a narrower architecture of the same layout, for example
/// <c>vgg-wide</c> into <c>vgg-bn</c> or <c>fast-cnn</c> into <c>fast-cnn-slim</c>: each convolution keeps the channels whose
/// batch-norm scale is largest in magnitude (a channel scaled near zero adds little to what follows), the next convolution
/// and <c>fc1</c> keep the matching inputs, and every other weight is copied. The result starts a fine-tune
/// (<c>fer train --init-from</c>), preferably distilled from the original, rather than being used as it is.
/// </summary>
public static class ChannelPruning
{
    public static EmotionModel Prune(EmotionModel source, string architecture, string name)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var from = source.Network.state_dict();
        var network = ModelRegistry.Create(architecture, source.ClassNames.Count);
        try
        {
            CopyNarrowed(from, network.state_dict(), source.Path ?? source.Metadata.Name, source.Metadata.Architecture, architecture);
        }
        catch
        {
            network.Dispose();
            throw;
        }
        var metadata = source.Metadata with
        {
            Name = name,
            Architecture = architecture,
            WeightsDtype = "float32",
            WeightsSha256 = null,
            Metrics = [],
            Parameters = network.parameters().Sum(p => p.numel()),
            Created = DateTimeOffset.UtcNow,
        };
        return new EmotionModel(metadata, network);
    }

    private static void CopyNarrowed(Dictionary<string, Tensor> from, Dictionary<string, Tensor> to, string place, string sourceArchitecture, string architecture)
    {
        var layers = ConvolutionNames(to);
        var sourceLayers = ConvolutionNames(from);
        if (!layers.SequenceEqual(sourceLayers))
        {
            throw new ArgumentException($"{place}: {sourceArchitecture} has the convolutions {string.Join(", ", sourceLayers)}, {architecture} {string.Join(", ", layers)}; only the widths may differ");
        }
        var narrowedKeys = new HashSet<string> { "fc1.weight" };
        long[] kept = [0]; // the input's one grey channel
        using (no_grad())
        {
            foreach (var layer in layers)
            {
                var conv = $"{layer}.weight";
                var norm = NormOf(layer);
                if (!from.ContainsKey($"{norm}.weight") || !to.ContainsKey($"{norm}.weight"))
                {
                    throw new ArgumentException($"{place}: {sourceArchitecture}'s {layer} has no batch norm {norm} to rank its channels by");
                }
                var sourceConv = from[conv];
                var width = to[conv].shape[0];
                if (width > sourceConv.shape[0] || to[conv].shape[2] != sourceConv.shape[2])
                {
                    throw new ArgumentException($"{place}: {layer} has {sourceConv.shape[0]} channels of {sourceConv.shape[2]}x{sourceConv.shape[3]}; {architecture} wants {width} of {to[conv].shape[2]}x{to[conv].shape[3]}, which is not a narrowing");
                }
                var channels = Strongest(from[$"{norm}.weight"], width);
                using var outputs = tensor(channels);
                using var inputs = tensor(kept);
                using (var rows = sourceConv.index_select(0, outputs))
                using (var narrowed = rows.index_select(1, inputs))
                {
                    to[conv].copy_(narrowed);
                }
                narrowedKeys.Add(conv);
                foreach (var part in new[] { "weight", "bias", "running_mean", "running_var" })
                {
                    narrowedKeys.Add($"{norm}.{part}");
                    using var values = from[$"{norm}.{part}"].index_select(0, outputs);
                    to[$"{norm}.{part}"].copy_(values);
                }
                kept = channels;
            }
            // fc1 reads the last convolution's channels flattened one by one: its columns c*area .. c*area+area-1 are channel c's.
            var fc = from["fc1.weight"];
            var area = fc.shape[1] / from[$"{NormOf(layers[^1])}.weight"].shape[0];
            var columns = kept.SelectMany(c => Enumerable.Range(0, (int)area).Select(k => c * area + k)).ToArray();
            using (var index = tensor(columns))
            using (var narrowed = fc.index_select(1, index))
            {
                to["fc1.weight"].copy_(narrowed);
            }
            foreach (var (key, target) in to)
            {
                if (narrowedKeys.Contains(key)) continue;
                if (!from.TryGetValue(key, out var value) || !value.shape.SequenceEqual(target.shape))
                {
                    throw new ArgumentException($"{place}: weight '{key}' of {architecture} has no counterpart of shape [{string.Join(",", target.shape)}]");
                }
                target.copy_(value);
            }
        }
    }

    /// <summary>The <paramref name="count"/> channels with the largest |scale|, in their original order.</summary>
    private static long[] Strongest(Tensor scale, long count)
    {
        using var magnitude = scale.abs();
        var values = magnitude.data<float>().ToArray();
        return [.. Enumerable.Range(0, values.Length).OrderByDescending(i => values[i]).Take((int)count).Order().Select(i => (long)i)];
    }

    /// <summary>The batch norm after a convolution (<c>b2_conv1</c> -> <c>b2_bn1</c>).</summary>
    private static string NormOf(string convolution) => convolution.Replace("_conv", "_bn", StringComparison.Ordinal);

    /// <summary>
    /// The 3x3 convolutions in the order data flows through them: <c>b{stage}_conv</c>, or <c>b{stage}_conv1</c>,
    /// <c>b{stage}_conv2</c>, … where a stage has several (<see cref="ConvLayers.PooledStages"/>' names).
    /// </summary>
    private static List<string> ConvolutionNames(Dictionary<string, Tensor> weights)
    {
        var layers = new List<string>();
        for (var stage = 1; ; stage++)
        {
            List<string> found = weights.ContainsKey($"b{stage}_conv.weight")
                ? [$"b{stage}_conv"]
                : [.. Enumerable.Range(1, int.MaxValue - 1).Select(i => $"b{stage}_conv{i}").TakeWhile(name => weights.ContainsKey($"{name}.weight"))];
            if (found.Count == 0) return layers;
            layers.AddRange(found);
        }
    }
}
