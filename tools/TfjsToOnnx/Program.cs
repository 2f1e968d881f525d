using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

using Google.Protobuf;

using Onnx;

// Converts a TensorFlow.js graph model made of convolutions (the BlazeFace family, human's mini-Xception
// emotion network) into an ONNX graph in NCHW layout that ONNX Runtime and OpenCV's DNN module run. Only the operations such detectors use are supported, each
// checked; anything else stops the conversion with the node's name.
// face-api.js's FaceExpressionNet ships as weights without a graph (its code builds the network), so it has
// a builder of its own: --face-api-expression <face_expression_model-weights_manifest.json> <out.onnx>.
var faceApi = args.Length == 3 && args[0] == "--face-api-expression";
if (args.Length != 2 && !faceApi)
{
    Console.Error.WriteLine("usage: tfjs-to-onnx <model.json> <out.onnx>\n       tfjs-to-onnx --face-api-expression <face_expression_model-weights_manifest.json> <out.onnx>");
    return 2;
}
if (faceApi) args = args[1..];
try
{
    var bytes = faceApi ? TfjsConverter.ConvertFaceApiExpression(args[0]) : TfjsConverter.Convert(args[0]);
    var temp = args[1] + ".tmp";
    File.WriteAllBytes(temp, bytes);
    File.Move(temp, args[1], overwrite: true);
    Console.WriteLine($"{args[1]}: {bytes.Length:N0} bytes");
    return 0;
}
catch (Exception e) when (e is InvalidDataException or NotSupportedException or IOException or JsonException)
{
    Console.Error.WriteLine($"{args[0]}: {e.Message}");
    return 2;
}

internal static class TfjsConverter
{
    private sealed record Shape(long H, long W, long C);

    public static byte[] Convert(string modelJsonPath)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(modelJsonPath));
        var root = json.RootElement;
        if (root.GetProperty("format").GetString() != "graph-model") throw new NotSupportedException("only TensorFlow.js graph models are supported");
        var constants = ReadWeights(root, Path.GetDirectoryName(Path.GetFullPath(modelJsonPath))!);
        var nodes = root.GetProperty("modelTopology").GetProperty("node").EnumerateArray().ToList();

        var graph = new GraphProto { Name = Path.GetFileNameWithoutExtension(modelJsonPath) };
        var shapes = new Dictionary<string, Shape>();
        var initialized = new HashSet<string>();
        var reshaped = new Dictionary<string, long[]>();
        foreach (var node in nodes)
        {
            var name = node.GetProperty("name").GetString()!;
            var op = node.GetProperty("op").GetString()!;
            var inputs = node.TryGetProperty("input", out var i) ? i.EnumerateArray().Select(x => x.GetString()!).ToList() : [];
            switch (op)
            {
                case "Const":
                    if (!constants.ContainsKey(name)) throw new InvalidDataException($"constant {name} has no weights");
                    break;
                case "Placeholder":
                    {
                        var dims = node.GetProperty("attr").GetProperty("shape").GetProperty("shape").GetProperty("dim").EnumerateArray()
                            .Select(d => long.Parse(d.GetProperty("size").GetString()!)).ToArray();
                        if (dims.Length != 4 || dims[1] <= 0 || dims[2] <= 0) throw new NotSupportedException($"{name}: input must be [N,H,W,C] with a fixed size");
                        shapes[name] = new Shape(dims[1], dims[2], dims[3]);
                        graph.Input.Add(Value(name, 1, dims[3], dims[1], dims[2]));
                        break;
                    }
                case "_FusedConv2D":
                case "DepthwiseConv2dNative":
                    {
                        var attr = node.GetProperty("attr");
                        RequireNhwc(name, attr);
                        var depthwise = op == "DepthwiseConv2dNative";
                        var fused = depthwise ? [] : attr.GetProperty("fused_ops").GetProperty("list").GetProperty("s").EnumerateArray()
                            .Select(s => Encoding.ASCII.GetString(s.GetBytesFromBase64())).ToList();
                        if (!depthwise && (fused.Count == 0 || fused[0] != "BiasAdd" || fused.Count > 2 || (fused.Count == 2 && fused[1] != "Relu")))
                        {
                            throw new NotSupportedException($"{name}: fused operations [{string.Join(", ", fused)}] (only BiasAdd, optionally then Relu)");
                        }
                        var strides = Ints(attr, "strides");
                        var dilations = Ints(attr, "dilations");
                        if (dilations.Any(d => d != 1)) throw new NotSupportedException($"{name}: dilated convolution");
                        var (filterShape, filter) = constants[inputs[1]];
                        var input = shapes[inputs[0]];
                        long kh = filterShape[0], kw = filterShape[1], cin = filterShape[2], cout = filterShape[3];
                        if (cin != input.C) throw new InvalidDataException($"{name}: filter expects {cin} channels, input has {input.C}");
                        var (padsH, outH) = Padding(attr, input.H, kh, strides[1]);
                        var (padsW, outW) = Padding(attr, input.W, kw, strides[2]);
                        float[] weights;
                        long[] weightShape;
                        long outputs;
                        if (depthwise)
                        {
                            // [kh, kw, in, multiplier] -> [in * multiplier, 1, kh, kw]; output channel c * multiplier + m, as in TF.
                            weights = Permute(filter, [kh, kw, cin, cout], [2, 3, 0, 1]);
                            outputs = cin * cout;
                            weightShape = [outputs, 1, kh, kw];
                        }
                        else
                        {
                            // HWIO -> OIHW.
                            weights = Permute(filter, [kh, kw, cin, cout], [3, 2, 0, 1]);
                            outputs = cout;
                            weightShape = [cout, cin, kh, kw];
                        }
                        var convInputs = new List<string> { inputs[0], Initializer(graph, initialized, name + ".weight", weightShape, weights) };
                        if (!depthwise)
                        {
                            var (biasShape, bias) = constants[inputs[2]];
                            if (biasShape.Length != 1 || biasShape[0] != outputs) throw new InvalidDataException($"{name}: bias of shape [{string.Join(",", biasShape)}]");
                            convInputs.Add(Initializer(graph, initialized, name + ".bias", biasShape, bias));
                        }
                        var relu = fused.Count == 2;
                        var conv = AddNode(graph, "Conv", relu ? name + ".conv" : name, convInputs);
                        conv.Attribute.Add(IntsAttribute("kernel_shape", [kh, kw]));
                        conv.Attribute.Add(IntsAttribute("strides", [strides[1], strides[2]]));
                        conv.Attribute.Add(IntsAttribute("pads", [padsH.Before, padsW.Before, padsH.After, padsW.After]));
                        conv.Attribute.Add(new AttributeProto { Name = "group", Type = AttributeProto.Types.AttributeType.Int, I = depthwise ? cin : 1 });
                        if (relu) AddNode(graph, "Relu", name, [name + ".conv"]);
                        shapes[name] = new Shape(outH, outW, outputs);
                        break;
                    }
                case "MaxPool":
                    {
                        var attr = node.GetProperty("attr");
                        RequireNhwc(name, attr);
                        var k = Ints(attr, "ksize");
                        var s = Ints(attr, "strides");
                        var input = shapes[inputs[0]];
                        var (padsH, outH) = Padding(attr, input.H, k[1], s[1]);
                        var (padsW, outW) = Padding(attr, input.W, k[2], s[2]);
                        var pool = AddNode(graph, "MaxPool", name, [inputs[0]]);
                        pool.Attribute.Add(IntsAttribute("kernel_shape", [k[1], k[2]]));
                        pool.Attribute.Add(IntsAttribute("strides", [s[1], s[2]]));
                        pool.Attribute.Add(IntsAttribute("pads", [padsH.Before, padsW.Before, padsH.After, padsW.After]));
                        shapes[name] = new Shape(outH, outW, input.C);
                        break;
                    }
                case "AddV2":
                    {
                        var (a, b) = (shapes[inputs[0]], shapes[inputs[1]]);
                        if (a != b) throw new InvalidDataException($"{name}: adds {a} and {b}");
                        AddNode(graph, "Add", name, inputs);
                        shapes[name] = a;
                        break;
                    }
                case "Relu":
                    AddNode(graph, "Relu", name, inputs);
                    shapes[name] = shapes[inputs[0]];
                    break;
                case "Pad":
                    {
                        var (padShape, pads) = constants[inputs[1]];
                        if (padShape.Length != 2 || padShape[0] != 4 || padShape[1] != 2 || pads[0] != 0 || pads[1] != 0)
                        {
                            throw new NotSupportedException($"{name}: paddings must be [4,2] and leave the batch alone");
                        }
                        // NHWC pairs (before, after) -> ONNX [N,C,H,W befores, N,C,H,W afters].
                        long P(int dim, int side) => (long)pads[dim * 2 + side];
                        long[] onnxPads = [0, P(3, 0), P(1, 0), P(2, 0), 0, P(3, 1), P(1, 1), P(2, 1)];
                        var padsName = Initializer(graph, initialized, name + ".pads", [8], onnxPads);
                        AddNode(graph, "Pad", name, [inputs[0], padsName]);
                        var input = shapes[inputs[0]];
                        shapes[name] = new Shape(input.H + P(1, 0) + P(1, 1), input.W + P(2, 0) + P(2, 1), input.C + P(3, 0) + P(3, 1));
                        break;
                    }
                case "Reshape":
                    {
                        // TF reshapes NHWC memory order; go back to it before reshaping.
                        var (targetShape, target) = constants[inputs[1]];
                        AddNode(graph, "Transpose", name + ".nhwc", [inputs[0]]).Attribute.Add(IntsAttribute("perm", [0, 2, 3, 1]));
                        // TF's target is [1, anchors, values] for one 256x256 image. Written as [batch as given, inferred,
                        // values], the graph also runs batches and other input sizes (a multiple of 32 for BlazeFace),
                        // whose anchor grids are larger; only the graph outputs' declared sizes still name the original.
                        if (target.Length != 3 || target[0] is not (1 or -1)) throw new NotSupportedException($"{name}: only reshapes to [1, n, values] are supported");
                        var shapeName = Initializer(graph, initialized, name + ".shape", [targetShape[0]], [0, -1, (long)target[2]]);
                        AddNode(graph, "Reshape", name, [name + ".nhwc", shapeName]);
                        reshaped[name] = target.Select(v => (long)v).ToArray(); // only graph outputs follow a reshape in supported models
                        break;
                    }
                case "Mean":
                    {
                        // Keras's global average pooling: the mean over height and width, to [N, C].
                        var (_, axes) = constants[inputs[1]];
                        var keep = node.GetProperty("attr").TryGetProperty("keep_dims", out var k) && k.GetProperty("b").GetBoolean();
                        if (!axes.Order().SequenceEqual([1f, 2f]) || keep) throw new NotSupportedException($"{name}: only the mean over height and width, not kept, is supported");
                        AddNode(graph, "GlobalAveragePool", name + ".pool", [inputs[0]]);
                        AddNode(graph, "Flatten", name, [name + ".pool"]).Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
                        reshaped[name] = [1, shapes[inputs[0]].C];
                        break;
                    }
                case "Softmax":
                    {
                        if (!reshaped.TryGetValue(inputs[0], out var flat) || flat.Length != 2) throw new NotSupportedException($"{name}: softmax only over [N, classes]");
                        AddNode(graph, "Softmax", name, inputs).Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
                        reshaped[name] = flat;
                        break;
                    }
                case "Identity":
                    {
                        if (!reshaped.TryGetValue(inputs[0], out var dims)) throw new NotSupportedException($"{name}: graph outputs must come from a reshape, a mean or a softmax");
                        AddNode(graph, "Identity", name, inputs);
                        graph.Output.Add(Value(name, dims));
                        break;
                    }
                default:
                    throw new NotSupportedException($"{name}: operation {op} is not supported");
            }
        }
        var model = new ModelProto { IrVersion = 8, ProducerName = "FerSharp tfjs-to-onnx", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model.ToByteArray();
    }

    /// <summary>
    /// face-api.js's FaceExpressionNet as its code builds it (src/faceFeatureExtractor, src/faceExpressionNet):
    /// RGB 112x112, minus the mean colour, divided by 255; four dense blocks of a convolution (separable after
    /// the first block) at stride 2 and three separable convolutions, each reading the sum of the ones before;
    /// a 7x7 average pool; a fully connected layer to 7 classes (neutral, happy, sad, angry, fearful, disgusted,
    /// surprised); softmax. Input NCHW RGB pixels 0..255, output probabilities [1, 7].
    /// </summary>
    public static byte[] ConvertFaceApiExpression(string manifestPath)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(manifestPath));
        var weights = ReadManifestWeights(json.RootElement, Path.GetDirectoryName(Path.GetFullPath(manifestPath))!);
        (long[] Shape, float[] Values) W(string name) => weights.TryGetValue(name, out var w) ? w : throw new InvalidDataException($"weight {name} is missing");
        var graph = new GraphProto { Name = "face-api-expression" };
        var initialized = new HashSet<string>();
        graph.Input.Add(Value("input", 1, 3, 112, 112));
        var mean = Initializer(graph, initialized, "mean_rgb", [1, 3, 1, 1], [122.782f, 117.001f, 104.298f]);
        var scale = Initializer(graph, initialized, "255", [1], [255f]);
        AddNode(graph, "Sub", "centred", ["input", mean]);
        var x = AddNode(graph, "Div", "normalized", ["centred", scale]).Output[0];
        var size = 112L;
        string Conv(string name, string input, string weightName, long[] weightShape, float[] values, long kernel, long stride, long group, string? bias)
        {
            // TensorFlow's SAME padding: the extra pixel after, at stride 2 on an even size.
            var output = (size + stride - 1) / stride;
            var total = Math.Max((output - 1) * stride + kernel - size, 0);
            var inputs = new List<string> { input, Initializer(graph, initialized, weightName, weightShape, values) };
            if (bias != null) inputs.Add(Initializer(graph, initialized, bias, W(bias).Shape, W(bias).Values));
            var node = AddNode(graph, "Conv", name, inputs);
            node.Attribute.Add(IntsAttribute("kernel_shape", [kernel, kernel]));
            node.Attribute.Add(IntsAttribute("strides", [stride, stride]));
            node.Attribute.Add(IntsAttribute("pads", [total / 2, total / 2, total - total / 2, total - total / 2]));
            node.Attribute.Add(new AttributeProto { Name = "group", Type = AttributeProto.Types.AttributeType.Int, I = group });
            return name;
        }
        string Separable(string prefix, string input, long stride)
        {
            var (dShape, dValues) = W(prefix + "/depthwise_filter"); // [3,3,C,1]
            var (pShape, pValues) = W(prefix + "/pointwise_filter"); // [1,1,C,O]
            var depthwise = Conv(prefix + "/depthwise", input, prefix + "/depthwise_filter", [dShape[2], 1, dShape[0], dShape[1]],
                Permute(dValues, dShape, [2, 3, 0, 1]), dShape[0], stride, dShape[2], null);
            size = (size + stride - 1) / stride;
            return Conv(prefix + "/pointwise", depthwise, prefix + "/pointwise_filter", [pShape[3], pShape[2], 1, 1],
                Permute(pValues, pShape, [3, 2, 0, 1]), 1, 1, 1, prefix + "/bias");
        }
        string Add(string name, params string[] terms)
        {
            var sum = terms[0];
            for (var t = 1; t < terms.Length; t++) sum = AddNode(graph, "Add", t == terms.Length - 1 ? name : $"{name}.{t}", [sum, terms[t]]).Output[0];
            return sum;
        }
        for (var block = 0; block < 4; block++)
        {
            var p = $"dense{block}";
            string first;
            if (block == 0)
            {
                var (shape, values) = W(p + "/conv0/filters"); // [3,3,3,32]
                first = Conv(p + "/conv0", x, p + "/conv0/filters", [shape[3], shape[2], shape[0], shape[1]], Permute(values, shape, [3, 2, 0, 1]), 3, 2, 1, p + "/conv0/bias");
                size = (size + 1) / 2;
            }
            else
            {
                first = Separable(p + "/conv0", x, 2);
            }
            var out1 = AddNode(graph, "Relu", p + "/out1", [first]).Output[0];
            var out2 = Separable(p + "/conv1", out1, 1);
            var in3 = AddNode(graph, "Relu", p + "/in3", [Add(p + "/sum3", out1, out2)]).Output[0];
            var out3 = Separable(p + "/conv2", in3, 1);
            var in4 = AddNode(graph, "Relu", p + "/in4", [Add(p + "/sum4", out1, out2, out3)]).Output[0];
            var out4 = Separable(p + "/conv3", in4, 1);
            x = AddNode(graph, "Relu", p + "/out", [Add(p + "/sum", out1, out2, out3, out4)]).Output[0];
        }
        var pool = AddNode(graph, "AveragePool", "pool", [x]);
        pool.Attribute.Add(IntsAttribute("kernel_shape", [7, 7]));
        pool.Attribute.Add(IntsAttribute("strides", [2, 2]));
        AddNode(graph, "Flatten", "features", ["pool"]).Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        var (fcShape, fcValues) = W("fc/weights");
        AddNode(graph, "Gemm", "fc", ["features", Initializer(graph, initialized, "fc/weights", fcShape, fcValues), Initializer(graph, initialized, "fc/bias", W("fc/bias").Shape, W("fc/bias").Values)]);
        AddNode(graph, "Softmax", "probabilities", ["fc"]).Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = 1 });
        graph.Output.Add(Value("probabilities", 1, fcShape[1]));
        var model = new ModelProto { IrVersion = 8, ProducerName = "FerSharp tfjs-to-onnx", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return model.ToByteArray();
    }

    /// <summary>A weights manifest's tensors (a list of groups, or a graph model's weightsManifest), uint8-quantized ones dequantized.</summary>
    private static Dictionary<string, (long[] Shape, float[] Values)> ReadManifestWeights(JsonElement groups, string folder)
    {
        var result = new Dictionary<string, (long[], float[])>();
        foreach (var group in groups.EnumerateArray())
        {
            var data = group.GetProperty("paths").EnumerateArray().SelectMany(p => File.ReadAllBytes(Path.Combine(folder, p.GetString()!))).ToArray();
            var offset = 0;
            foreach (var weight in group.GetProperty("weights").EnumerateArray())
            {
                var name = weight.GetProperty("name").GetString()!;
                var shape = weight.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray();
                var count = (int)shape.Aggregate(1L, (a, b) => a * b);
                if (weight.TryGetProperty("quantization", out var q))
                {
                    if (q.GetProperty("dtype").GetString() != "uint8") throw new NotSupportedException($"{name}: {q.GetProperty("dtype").GetString()} quantization");
                    var (qScale, qMin) = (q.GetProperty("scale").GetSingle(), q.GetProperty("min").GetSingle());
                    result[name] = (shape, data.AsSpan(offset, count).ToArray().Select(b => b * qScale + qMin).ToArray());
                    offset += count;
                    continue;
                }
                if (weight.GetProperty("dtype").GetString() != "float32") throw new NotSupportedException($"{name}: dtype {weight.GetProperty("dtype").GetString()}");
                result[name] = (shape, MemoryMarshal.Cast<byte, float>(data.AsSpan(offset, count * 4)).ToArray());
                offset += count * 4;
            }
            if (offset != data.Length) throw new InvalidDataException($"weights files hold {data.Length} bytes, the manifest describes {offset}");
        }
        return result;
    }

    private static void RequireNhwc(string name, JsonElement attr)
    {
        if (attr.TryGetProperty("data_format", out var f) && Encoding.ASCII.GetString(f.GetProperty("s").GetBytesFromBase64()) != "NHWC")
        {
            throw new NotSupportedException($"{name}: only NHWC data is supported");
        }
    }

    private static long[] Ints(JsonElement attr, string key) =>
        attr.GetProperty(key).GetProperty("list").GetProperty("i").EnumerateArray().Select(x => long.Parse(x.GetString()!)).ToArray();

    /// <summary>TensorFlow's SAME (extra padding after, when odd) or VALID padding along one axis.</summary>
    private static ((long Before, long After), long Out) Padding(JsonElement attr, long size, long kernel, long stride)
    {
        var mode = Encoding.ASCII.GetString(attr.GetProperty("padding").GetProperty("s").GetBytesFromBase64());
        switch (mode)
        {
            case "SAME":
                {
                    var output = (size + stride - 1) / stride;
                    var total = Math.Max((output - 1) * stride + kernel - size, 0);
                    return ((total / 2, total - total / 2), output);
                }
            case "VALID":
                return ((0, 0), (size - kernel) / stride + 1);
            default:
                throw new NotSupportedException($"padding {mode}");
        }
    }

    private static float[] Permute(float[] data, long[] shape, int[] order)
    {
        var strides = new long[shape.Length];
        strides[^1] = 1;
        for (var d = shape.Length - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
        var outShape = order.Select(o => shape[o]).ToArray();
        var result = new float[data.Length];
        var index = new long[shape.Length];
        for (long n = 0; n < result.Length; n++)
        {
            long source = 0;
            for (var d = 0; d < order.Length; d++) source += index[d] * strides[order[d]];
            result[n] = data[source];
            for (var d = outShape.Length - 1; d >= 0; d--)
            {
                if (++index[d] < outShape[d]) break;
                index[d] = 0;
            }
        }
        return result;
    }

    /// <summary>Constants by name: shape and values as floats (int32 constants are converted exactly).</summary>
    private static Dictionary<string, (long[] Shape, float[] Values)> ReadWeights(JsonElement root, string folder)
    {
        var result = new Dictionary<string, (long[], float[])>();
        foreach (var group in root.GetProperty("weightsManifest").EnumerateArray())
        {
            var data = group.GetProperty("paths").EnumerateArray().SelectMany(p => File.ReadAllBytes(Path.Combine(folder, p.GetString()!))).ToArray();
            var offset = 0;
            foreach (var weight in group.GetProperty("weights").EnumerateArray())
            {
                var name = weight.GetProperty("name").GetString()!;
                if (weight.TryGetProperty("quantization", out _)) throw new NotSupportedException($"{name}: quantized weights");
                var shape = weight.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()).ToArray();
                var count = (int)shape.Aggregate(1L, (a, b) => a * b);
                var dtype = weight.GetProperty("dtype").GetString();
                var span = data.AsSpan(offset, count * 4);
                var values = dtype switch
                {
                    "float32" => MemoryMarshal.Cast<byte, float>(span).ToArray(),
                    "int32" => MemoryMarshal.Cast<byte, int>(span).ToArray().Select(v => (float)v).ToArray(),
                    _ => throw new NotSupportedException($"{name}: dtype {dtype}"),
                };
                offset += count * 4;
                result[name] = (shape, values);
            }
            if (offset != data.Length) throw new InvalidDataException($"weights files hold {data.Length} bytes, the manifest describes {offset}");
        }
        return result;
    }

    private static NodeProto AddNode(GraphProto graph, string op, string name, IEnumerable<string> inputs)
    {
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(name);
        graph.Node.Add(node);
        return node;
    }

    private static string Initializer(GraphProto graph, HashSet<string> initialized, string name, long[] shape, float[] values)
    {
        if (!initialized.Add(name)) return name;
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(shape);
        proto.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan()));
        graph.Initializer.Add(proto);
        return name;
    }

    private static string Initializer(GraphProto graph, HashSet<string> initialized, string name, long[] shape, long[] values)
    {
        if (!initialized.Add(name)) return name;
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        proto.Dims.AddRange(shape);
        proto.Int64Data.AddRange(values);
        graph.Initializer.Add(proto);
        return name;
    }

    private static AttributeProto IntsAttribute(string name, IEnumerable<long> values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    private static ValueInfoProto Value(string name, params long[] dims)
    {
        var type = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        type.Shape.Dim.AddRange(dims.Select(d => new TensorShapeProto.Types.Dimension { DimValue = d }));
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = type } };
    }
}
