using System.Runtime.InteropServices;

using Onnx;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// Reads a package's ONNX network back into a TorchSharp network: each parameter and batch-norm statistic from
/// the initializer named by its state-dict key (<see cref="OnnxExport"/>), float16 values widened to float32.
/// </summary>
internal static class OnnxWeights
{
    public static void Load(nn.Module<Tensor, Tensor> network, byte[] onnx)
    {
        ArgumentNullException.ThrowIfNull(network);
        var model = ModelProto.Parser.ParseFrom(onnx);
        var initializers = model.Graph.Initializer.ToDictionary(t => t.Name);
        using var noGrad = no_grad();
        foreach (var (name, target) in network.state_dict())
        {
            if (name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) continue; // unused in eval, not in the graph
            if (!initializers.TryGetValue(name, out var stored))
            {
                throw new InvalidDataException($"the ONNX graph has no weight '{name}'");
            }
            if (!stored.Dims.SequenceEqual(target.shape))
            {
                throw new InvalidDataException($"weight '{name}' has shape [{string.Join(",", stored.Dims)}] in the ONNX graph, the network needs [{string.Join(",", target.shape)}]");
            }
            var values = (TensorProto.Types.DataType)stored.DataType switch
            {
                TensorProto.Types.DataType.Float16 => OnnxGraphs.Widen(stored),
                TensorProto.Types.DataType.Float => stored.RawData.IsEmpty ? [.. stored.FloatData] : MemoryMarshal.Cast<byte, float>(stored.RawData.Span).ToArray(),
                var other => throw new InvalidDataException($"weight '{name}' is stored as {other}; expected float or float16"),
            };
            using var source = tensor(values, target.shape);
            target.copy_(source);
        }
    }
}
