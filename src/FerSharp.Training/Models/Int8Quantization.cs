using Google.Protobuf;

using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

using Onnx;

namespace FerSharp.Models;

/// <summary>
/// Makes the int8 copy of a package's network (<see cref="ModelMetadata.Int8"/>): static post-training
/// quantization in ONNX's QDQ form, which ONNX Runtime fuses into integer convolutions (QLinearConv) when it
/// loads the graph. Weights are int8 per output channel (symmetric), biases int32, activations uint8 with ranges
/// measured on calibration faces; max pooling runs on the uint8 values; the input normalization and the dense
/// layers stay float.
/// </summary>
public static class Int8Quantization
{
    /// <summary>Faces per calibration call.</summary>
    private const int CalibrationBatch = 64;

    /// <summary>
    /// The int8 graph of <paramref name="floatOnnx"/> (a package's <c>model.onnx</c>: grey pixels 0..255 in, logits
    /// out), its activation ranges measured on <paramref name="calibrationFaces"/> (48x48 grey, 0..255).
    /// </summary>
    /// <exception cref="ArgumentException">No calibration faces, or a face that is not 48x48.</exception>
    public static byte[] Quantize(byte[] floatOnnx, IReadOnlyList<byte[]> calibrationFaces, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(floatOnnx);
        ArgumentNullException.ThrowIfNull(calibrationFaces);
        if (calibrationFaces.Count == 0) throw new ArgumentException("quantization needs calibration faces", nameof(calibrationFaces));
        var model = Folded(floatOnnx);
        var graph = model.Graph;
        var plan = Plan(graph);
        var ranges = Calibrate(model, plan.Measured, calibrationFaces, cancellationToken);
        var parameters = new Dictionary<string, (float Scale, byte ZeroPoint)>();
        foreach (var tensor in plan.Measured) parameters[tensor] = Activation(ranges[tensor]);
        foreach (var (output, input) in plan.SameAs) parameters[output] = parameters[input];
        Rewrite(graph, plan, parameters);
        model.MetadataProps.Add(new StringStringEntryProto { Key = "fersharp.int8", Value = $"QDQ int8 per-channel weights, uint8 activations calibrated on {calibrationFaces.Count} faces" });
        return model.ToByteArray();
    }

    /// <summary>
    /// Writes the int8 copy of the package in <paramref name="folder"/> beside its float network
    /// (<see cref="ModelMetadata.Int8FileName"/>) and records it in <c>model.json</c>, both written atomically.
    /// </summary>
    /// <param name="folder">The package folder.</param>
    /// <param name="calibrationFaces">48x48 grey faces the activation ranges are measured on, with their mirror images.</param>
    /// <param name="calibration">What the calibration faces are, for the model card.</param>
    /// <param name="cancellationToken">Stops the calibration between batches.</param>
    /// <returns>The package's metadata as written.</returns>
    /// <exception cref="InvalidDataException">The package has no ONNX network (format 3).</exception>
    public static ModelMetadata AddTo(string folder, IReadOnlyList<byte[]> calibrationFaces, string calibration, CancellationToken cancellationToken = default)
    {
        var metadata = ModelPackage.ReadMetadata(folder, out folder, out var jsonPath);
        if (!metadata.HasOnnxNetwork || metadata.WeightsSha256 is null)
        {
            throw new InvalidDataException($"{jsonPath}: format {metadata.FormatVersion} package without a checked ONNX network; convert it with 'fer models upgrade {folder}' first");
        }
        var int8 = Quantize(ModelPackage.ReadWeights(folder, metadata), calibrationFaces, cancellationToken);
        AtomicFile.WriteAllBytes(Path.Combine(folder, ModelMetadata.Int8FileName), int8);
        var updated = metadata with
        {
            Int8 = new Int8Network(ModelMetadata.Int8FileName, ModelPackage.Sha256(int8), metadata.WeightsSha256, calibration),
            Metrics = metadata.MetricsWithoutInt8(),
        };
        AtomicFile.WriteAllText(jsonPath, System.Text.Json.JsonSerializer.Serialize(updated, ModelMetadata.JsonOptions));
        return updated;
    }

    /// <summary>The graph after ONNX Runtime's basic optimizations: batch norms folded into the convolutions, float16 weights widened.</summary>
    private static ModelProto Folded(byte[] onnx)
    {
        var path = Path.Combine(Path.GetTempPath(), $"fersharp-quantize-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_BASIC, OptimizedModelFilePath = path, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR })
            using (new InferenceSession(onnx, options))
            {
            }
            return ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// The activations to quantize: each convolution's input and its output (after the ReLU that follows it, which
    /// the uint8 range then applies); <see cref="QuantizationPlan.SameAs"/> are max-pool outputs that keep their input's range.
    /// </summary>
    private sealed record QuantizationPlan(List<NodeProto> Convolutions, List<string> Measured, Dictionary<string, string> SameAs, List<string> Order);

    private static QuantizationPlan Plan(GraphProto graph)
    {
        var consumers = graph.Node.SelectMany(n => n.Input.Select(i => (i, n))).ToLookup(p => p.i, p => p.n);
        var graphOutputs = graph.Output.Select(o => o.Name).ToHashSet();
        var convolutions = graph.Node.Where(n => n.OpType == "Conv").ToList();
        var measured = new List<string>();
        void Add(string tensor)
        {
            if (!graphOutputs.Contains(tensor) && !measured.Contains(tensor)) measured.Add(tensor);
        }
        foreach (var conv in convolutions)
        {
            Add(conv.Input[0]);
            var output = conv.Output[0];
            var next = consumers[output].ToList();
            Add(next is [{ OpType: "Relu" } relu] ? relu.Output[0] : output);
        }
        var sameAs = new Dictionary<string, string>();
        var order = new List<string>(measured);
        for (var i = 0; i < order.Count; i++)
        {
            foreach (var pool in consumers[order[i]].Where(n => n.OpType == "MaxPool" && !graphOutputs.Contains(n.Output[0])))
            {
                var output = pool.Output[0];
                measured.Remove(output);
                if (sameAs.TryAdd(output, order[i]) && !order.Contains(output)) order.Add(output);
            }
        }
        return new QuantizationPlan(convolutions, measured, sameAs, order);
    }

    /// <summary>Each tensor's smallest and largest value over the calibration faces and their mirror images.</summary>
    private static Dictionary<string, (float Min, float Max)> Calibrate(ModelProto model, IReadOnlyList<string> tensors,
        IReadOnlyList<byte[]> faces, CancellationToken cancellationToken)
    {
        var probe = model.Clone();
        foreach (var tensor in tensors) probe.Graph.Output.Add(new ValueInfoProto { Name = tensor });
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR };
        using var session = new InferenceSession(probe.ToByteArray(), options);
        var input = session.InputNames[0];
        var ranges = tensors.ToDictionary(t => t, _ => (Min: float.PositiveInfinity, Max: float.NegativeInfinity));
        for (var start = 0; start < faces.Count; start += CalibrationBatch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var batch = faces.Skip(start).Take(CalibrationBatch).ToList();
            var views = FaceViews.Build(batch, Evaluation.TtaMode.Flip, flipAveraging: true);
            var tensor = new DenseTensor<float>(views, [views.Length / Data.FaceDataset.PixelsPerImage, 1, Data.FaceDataset.ImageSize, Data.FaceDataset.ImageSize]);
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(input, tensor)], tensors);
            foreach (var result in results)
            {
                var (min, max) = ranges[result.Name];
                foreach (var value in result.AsEnumerable<float>())
                {
                    if (value < min) min = value;
                    if (value > max) max = value;
                }
                ranges[result.Name] = (min, max);
            }
        }
        return ranges;
    }

    /// <summary>uint8 scale and zero point covering the range and zero (so ReLU's zeros and padding are exact).</summary>
    private static (float Scale, byte ZeroPoint) Activation((float Min, float Max) range)
    {
        var low = Math.Min(0f, range.Min);
        var high = Math.Max(0f, range.Max);
        var scale = high > low ? (high - low) / 255f : 1f;
        return (scale, (byte)Math.Clamp(Math.Round(-low / scale), 0, 255));
    }

    private static void Rewrite(GraphProto graph, QuantizationPlan plan, Dictionary<string, (float Scale, byte ZeroPoint)> parameters)
    {
        var initializers = graph.Initializer.ToDictionary(t => t.Name);
        var dequantized = plan.Order.ToDictionary(t => t, t => t + "_dequantized");
        var nodes = new List<NodeProto>();
        void QuantizePair(string tensor)
        {
            var (scale, zeroPoint) = parameters[tensor];
            graph.Initializer.Add(FloatTensor(tensor + "_scale", [scale], scalar: true));
            graph.Initializer.Add(new TensorProto { Name = tensor + "_zero_point", DataType = (int)TensorProto.Types.DataType.Uint8, RawData = ByteString.CopyFrom([zeroPoint]) });
            nodes.Add(Node("QuantizeLinear", tensor + "_quantize", [tensor, tensor + "_scale", tensor + "_zero_point"], tensor + "_quantized"));
            nodes.Add(Node("DequantizeLinear", tensor + "_dequantize", [tensor + "_quantized", tensor + "_scale", tensor + "_zero_point"], dequantized[tensor]));
        }
        foreach (var input in graph.Input.Select(i => i.Name).Where(dequantized.ContainsKey)) QuantizePair(input);
        foreach (var node in graph.Node)
        {
            for (var i = 0; i < node.Input.Count; i++)
            {
                if (dequantized.TryGetValue(node.Input[i], out var replacement)) node.Input[i] = replacement;
            }
            if (node.OpType == "Conv" && plan.Convolutions.Contains(node)) nodes.AddRange(QuantizeWeights(graph, initializers, node, parameters));
            nodes.Add(node);
            foreach (var output in node.Output.Where(dequantized.ContainsKey)) QuantizePair(output);
        }
        graph.Node.Clear();
        graph.Node.AddRange(nodes);
    }

    /// <summary>
    /// Replaces a convolution's float weights by int8 per output channel and its bias by int32 at the input scale
    /// times each channel's weight scale, each read through a DequantizeLinear node (the QDQ form).
    /// </summary>
    private static IEnumerable<NodeProto> QuantizeWeights(GraphProto graph, Dictionary<string, TensorProto> initializers, NodeProto conv,
        Dictionary<string, (float Scale, byte ZeroPoint)> parameters)
    {
        var input = conv.Input[0].EndsWith("_dequantized", StringComparison.Ordinal) ? conv.Input[0][..^"_dequantized".Length] : null;
        if (input is null || !parameters.TryGetValue(input, out var activation) || !initializers.TryGetValue(conv.Input[1], out var weights)) yield break;
        var w = Floats(weights);
        var channels = (int)weights.Dims[0];
        var perChannel = w.Length / channels;
        var scales = new float[channels];
        var quantized = new byte[w.Length];
        for (var c = 0; c < channels; c++)
        {
            var largest = 0f;
            for (var i = 0; i < perChannel; i++) largest = Math.Max(largest, Math.Abs(w[c * perChannel + i]));
            scales[c] = largest > 0 ? largest / 127f : 1f;
            for (var i = 0; i < perChannel; i++)
            {
                quantized[c * perChannel + i] = unchecked((byte)(sbyte)Math.Clamp(Math.Round(w[c * perChannel + i] / scales[c]), -127, 127));
            }
        }
        var name = conv.Input[1];
        var weightTensor = new TensorProto { Name = name + "_int8", DataType = (int)TensorProto.Types.DataType.Int8, RawData = ByteString.CopyFrom(quantized) };
        weightTensor.Dims.AddRange(weights.Dims);
        graph.Initializer.Remove(weights);
        graph.Initializer.Add(weightTensor);
        graph.Initializer.Add(FloatTensor(name + "_scale", scales));
        graph.Initializer.Add(Int8Zeros(name + "_zero_point", channels));
        conv.Input[1] = name + "_dequantized";
        yield return Node("DequantizeLinear", name + "_dequantize", [weightTensor.Name, name + "_scale", name + "_zero_point"], conv.Input[1], axis: 0);
        if (conv.Input.Count > 2 && initializers.TryGetValue(conv.Input[2], out var bias))
        {
            var b = Floats(bias);
            var biasScales = scales.Select(s => s * activation.Scale).ToArray();
            var biasTensor = new TensorProto { Name = conv.Input[2] + "_int32", DataType = (int)TensorProto.Types.DataType.Int32 };
            biasTensor.Dims.Add(channels);
            biasTensor.Int32Data.AddRange(b.Select((v, c) => (int)Math.Clamp(Math.Round(v / biasScales[c]), int.MinValue, int.MaxValue)));
            var zeros = new TensorProto { Name = conv.Input[2] + "_zero_point", DataType = (int)TensorProto.Types.DataType.Int32 };
            zeros.Dims.Add(channels);
            zeros.Int32Data.AddRange(new int[channels]);
            graph.Initializer.Remove(bias);
            graph.Initializer.Add(biasTensor);
            graph.Initializer.Add(FloatTensor(conv.Input[2] + "_scale", biasScales));
            graph.Initializer.Add(zeros);
            var biasName = conv.Input[2];
            conv.Input[2] = biasName + "_dequantized";
            yield return Node("DequantizeLinear", biasName + "_dequantize", [biasTensor.Name, biasName + "_scale", biasName + "_zero_point"], conv.Input[2], axis: 0);
        }
    }

    private static float[] Floats(TensorProto tensor)
    {
        if (tensor.DataType != (int)TensorProto.Types.DataType.Float) throw new NotSupportedException($"weight {tensor.Name} is not float32 after folding");
        if (tensor.FloatData.Count > 0) return [.. tensor.FloatData];
        var values = new float[tensor.RawData.Length / sizeof(float)];
        Buffer.BlockCopy(tensor.RawData.ToByteArray(), 0, values, 0, tensor.RawData.Length);
        return values;
    }

    private static TensorProto FloatTensor(string name, float[] values, bool scalar = false)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        if (!scalar) tensor.Dims.Add(values.Length);
        tensor.FloatData.AddRange(values);
        return tensor;
    }

    private static TensorProto Int8Zeros(string name, int count)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int8, RawData = ByteString.CopyFrom(new byte[count]) };
        tensor.Dims.Add(count);
        return tensor;
    }

    private static NodeProto Node(string op, string name, string[] inputs, string output, long? axis = null)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        if (axis is { } value) node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = value });
        return node;
    }
}
