using System.Runtime.InteropServices;

using Google.Protobuf;

using Onnx;

namespace FerSharp.Models;

/// <summary>Rewrites of a package's ONNX graph for runtimes that need them.</summary>
internal static class OnnxGraphs
{
    /// <summary>
    /// The graph with each float16 weight that a Cast node widens to float32 stored as float32 instead, the
    /// Cast removed. A package stores its weights in float16 (half the size) behind such Casts; ONNX Runtime
    /// folds them when it loads the graph, OpenCV's importer needs the weights already in float32.
    /// </summary>
    public static byte[] WithFloat32Initializers(byte[] onnx)
    {
        var model = ModelProto.Parser.ParseFrom(onnx);
        var graph = model.Graph;
        var halves = graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float16).ToDictionary(t => t.Name);
        if (halves.Count == 0) return onnx;
        foreach (var cast in graph.Node.Where(n => n.OpType == "Cast" && n.Input.Count == 1 && halves.ContainsKey(n.Input[0])).ToList())
        {
            if (cast.Attribute.FirstOrDefault(a => a.Name == "to")?.I != (long)TensorProto.Types.DataType.Float) continue;
            var half = halves[cast.Input[0]];
            var widened = new TensorProto { Name = cast.Output[0], DataType = (int)TensorProto.Types.DataType.Float };
            widened.Dims.AddRange(half.Dims);
            widened.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(Widen(half).AsSpan()));
            graph.Initializer.Add(widened);
            graph.Node.Remove(cast);
        }
        var used = graph.Node.SelectMany(n => n.Input).ToHashSet();
        foreach (var unused in graph.Initializer.Where(t => t.DataType == (int)TensorProto.Types.DataType.Float16 && !used.Contains(t.Name)).ToList())
        {
            graph.Initializer.Remove(unused);
        }
        return model.ToByteArray();
    }

    /// <summary>
    /// The graph with the input's height and width set to the given size, and every output's second dimension
    /// made symbolic: a fully convolutional detector converted with one fixed input size then runs at another.
    /// </summary>
    public static byte[] WithImageSize(byte[] onnx, int height, int width)
    {
        var model = ModelProto.Parser.ParseFrom(onnx);
        var graph = model.Graph;
        var input = graph.Input.Single(i => graph.Initializer.All(t => t.Name != i.Name)).Type.TensorType.Shape.Dim;
        input[2] = new TensorShapeProto.Types.Dimension { DimValue = height };
        input[3] = new TensorShapeProto.Types.Dimension { DimValue = width };
        foreach (var output in graph.Output)
        {
            var dims = output.Type.TensorType.Shape.Dim;
            if (dims.Count > 1) dims[1] = new TensorShapeProto.Types.Dimension { DimParam = output.Name + "_anchors" };
        }
        return model.ToByteArray();
    }

    /// <summary>The values of a float16 tensor (raw data, or the int32 field ONNX also allows for it) as float32.</summary>
    public static float[] Widen(TensorProto half)
    {
        ArgumentNullException.ThrowIfNull(half);
        if (!half.RawData.IsEmpty)
        {
            var values = MemoryMarshal.Cast<byte, Half>(half.RawData.Span);
            var result = new float[values.Length];
            for (var i = 0; i < values.Length; i++) result[i] = (float)values[i];
            return result;
        }
        return half.Int32Data.Select(bits => (float)BitConverter.UInt16BitsToHalf((ushort)bits)).ToArray();
    }
}
