using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

using Google.Protobuf;

using Onnx;

using TorchSharp;
using TorchSharp.Modules;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// Writes a trained network as an ONNX graph (opset 13), dropout left out: the network file of a model package
/// (format 3), which recognition runs on ONNX Runtime or OpenCV and training reads back. Each weight is an
/// initializer named by its state-dict key, stored in float32 or float16 (widened by a Cast node), and each batch
/// norm a BatchNormalization node, so the file holds exactly the trained values; ONNX Runtime and OpenCV fold
/// the batch norms into the layers before them when they load the graph. A package's graph starts with its
/// input normalization and maps grey pixels 0..255 <c>float [N,1,48,48]</c> to logits <c>[N, classes]</c>;
/// softmax and flip averaging stay with the caller.
/// </summary>
/// <remarks>
/// A <c>Sequential</c> network of convolutions, linear layers, batch norms that follow them, ReLU, max pooling,
/// global average pooling, flatten and dropout is written, and so are FerSharp's residual blocks built from
/// those (<see cref="IResidualModule"/>): every registered architecture. For anything else
/// <see cref="FindUnsupportedLayer"/> names the layer. The class count is the out size of the last
/// convolution or linear layer (mini-xception ends in a convolution and a global average pool).
/// </remarks>
public static class OnnxExport
{
    public const string InputName = "faces";
    public const string OutputName = "logits";
    public const long Opset = 13;

    /// <summary>The name and type of the first layer that cannot be written, or null when the whole network can.</summary>
    public static string? FindUnsupportedLayer(nn.Module<Tensor, Tensor> network)
    {
        ArgumentNullException.ThrowIfNull(network);
        return network is Sequential sequential
            ? FindUnsupportedIn(sequential, "")
            : $"the network itself ({network.GetType().Name}, not a Sequential)";
    }

    private static string? FindUnsupportedIn(Sequential sequential, string prefix)
    {
        var layers = sequential.named_children().ToList();
        for (var i = 0; i < layers.Count; i++)
        {
            var (name, layer) = layers[i];
            var path = prefix + name;
            if (layer is BatchNorm norm)
            {
                if (i == 0 || layers[i - 1].module is not (Conv2d or Linear) || !BatchNormFolding.CanFold(norm))
                {
                    return $"{path} (a batch norm that does not follow a convolution or linear layer)";
                }
            }
            else if (layer is IResidualModule block)
            {
                var inside = FindUnsupportedIn(block.Branch, path + ".branch.");
                if (inside is null && block.Shortcut is { } shortcut) inside = FindUnsupportedIn(shortcut, path + ".shortcut.");
                if (inside is not null) return inside;
            }
            else if (!IsSupported(layer))
            {
                return $"{path} ({layer.GetType().Name})";
            }
        }
        return null;
    }

    /// <summary>The package as ONNX bytes, with its model.json settings as metadata properties.</summary>
    /// <param name="model">The package.</param>
    /// <param name="float16">Store the weights in float16 (half the size; the graph computes in float32).</param>
    /// <exception cref="NotSupportedException">The network has a layer the exporter cannot write (named).</exception>
    public static byte[] Export(EmotionModel model, bool float16 = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        var metadata = model.Metadata;
        var properties = new Dictionary<string, string>
        {
            ["fersharp.name"] = metadata.Name,
            ["fersharp.architecture"] = metadata.Architecture,
            ["fersharp.class_names"] = JsonSerializer.Serialize(metadata.ClassNames),
            ["fersharp.input_size"] = metadata.InputSize.ToString(CultureInfo.InvariantCulture),
            ["fersharp.input"] = "grey pixels 0..255; the normalization below is inside the graph",
            ["fersharp.normalization_per_face"] = metadata.Normalization.PerFace,
            ["fersharp.normalization_mean"] = metadata.Normalization.Mean.ToString("R", CultureInfo.InvariantCulture),
            ["fersharp.normalization_std"] = metadata.Normalization.Std.ToString("R", CultureInfo.InvariantCulture),
            ["fersharp.flip_averaging"] = metadata.FlipAveraging ? "true" : "false",
        };
        return ExportNetwork(model.Network, metadata.InputSize, properties, metadata.Normalization, float16);
    }

    /// <summary>
    /// The network as ONNX bytes (input [N,1,size,size], output [N, classes]). With <paramref name="preprocessing"/>
    /// the graph starts with it and takes grey pixels 0..255 (as floats); without, it takes already normalized faces.
    /// </summary>
    /// <exception cref="NotSupportedException">The network has a layer the exporter cannot write (named).</exception>
    public static byte[] ExportNetwork(nn.Module<Tensor, Tensor> network, int inputSize = 48, IReadOnlyDictionary<string, string>? properties = null,
        Normalization? preprocessing = null, bool float16 = false)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (FindUnsupportedLayer(network) is { } unsupported)
        {
            throw new NotSupportedException($"cannot export to ONNX: layer {unsupported} is not supported (supported: Conv2d, Linear, a BatchNorm after either, ReLU, MaxPool2d, AdaptiveAvgPool2d(1), Flatten, Dropout, and FerSharp's residual blocks made of these)");
        }
        var names = network.named_parameters().Select(p => (name: p.name, tensor: (Tensor)p.parameter))
            .Concat(network.named_buffers().Select(b => (name: b.name, tensor: b.buffer)))
            .ToDictionary(p => p.tensor.Handle, p => p.name);
        var graph = new GraphBuilder(names, float16);
        using (no_grad())
        {
            if (preprocessing is not null) graph.AddPreprocessing(preprocessing);
            graph.AddSequence((Sequential)network, "");
        }
        var model = new ModelProto
        {
            IrVersion = 8,
            ProducerName = "FerSharp",
            ProducerVersion = typeof(OnnxExport).Assembly.GetName().Version?.ToString() ?? "",
            DocString = preprocessing is null
                ? "Facial-expression classifier: normalized 48x48 grayscale faces to class logits."
                : "Facial-expression classifier: 48x48 grayscale faces (pixels 0..255) to class logits; the input normalization is part of the graph.",
            Graph = graph.Finish(inputSize),
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in properties ?? new Dictionary<string, string>())
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }
        return model.ToByteArray();
    }

    private static bool IsSupported(nn.Module layer) => layer switch
    {
        Conv2d conv => !conv.transposed && conv.padding_mode == PaddingModes.Zeros && conv.padding_type is null && conv.padding is not null,
        Linear or ReLU or SeededDropout or Dropout or Dropout2d => true,
        // ceil_mode is left out of the graph (OpenCV 4.13 refuses the attribute), so only its default is written.
        MaxPool2d pool => !pool.ceil_mode && (pool.dilation is null || pool.dilation.All(d => d == 1)),
        AdaptiveAvgPool2d pool => pool.output_size.All(s => s == 1),
        Flatten flatten => flatten.start_dim == 1 && flatten.end_dim == -1,
        _ => false,
    };

    /// <summary>
    /// Appends one node per layer, each reading the previous node's output; a residual block forks from its
    /// input and joins with an Add. Node names are the layers' paths (<c>stage1_block1.branch.conv1</c>), weight
    /// names their state-dict keys.
    /// </summary>
    private sealed class GraphBuilder(IReadOnlyDictionary<IntPtr, string> stateNames, bool float16)
    {
        private readonly GraphProto _graph = new() { Name = "fersharp" };
        private string _current = InputName;
        private long _outputs = -1;

        /// <summary>
        /// The package's input normalization as the graph's first nodes, the arithmetic of
        /// <see cref="Preprocessing.NormalizeScaled"/>: pixels / 255, then per face (x - mean) / sqrt(var + eps)
        /// with the moments from global average pools, then (x - Mean) / Std.
        /// </summary>
        public void AddPreprocessing(Normalization normalization)
        {
            normalization.EnsureKnown("ONNX export");
            Node("Div", "preprocess.scale", Constant("preprocess.255", 255f));
            if (normalization.StandardizesEachFace)
            {
                var scaled = _current;
                var mean = Node("GlobalAveragePool", "preprocess.face_mean").Output[0];
                _current = scaled;
                var centred = Node("Sub", "preprocess.centre", mean).Output[0];
                Node("Mul", "preprocess.square", centred);
                Node("GlobalAveragePool", "preprocess.face_variance");
                Node("Add", "preprocess.epsilon", Constant("preprocess.eps", (float)Normalization.PerFaceEpsilon));
                var spread = Node("Sqrt", "preprocess.face_std").Output[0];
                _current = centred;
                Node("Div", "preprocess.standardize", spread);
            }
            if (normalization.Mean != 0 || normalization.Std != 1)
            {
                Node("Sub", "preprocess.mean", Constant("preprocess.mean_value", (float)normalization.Mean));
                Node("Div", "preprocess.std", Constant("preprocess.std_value", (float)normalization.Std));
            }
        }

        private string Constant(string name, float value)
        {
            var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
            proto.Dims.Add(1);
            proto.FloatData.Add(value);
            _graph.Initializer.Add(proto);
            return name;
        }

        public void AddSequence(Sequential sequential, string prefix)
        {
            var layers = sequential.named_children().ToList();
            for (var i = 0; i < layers.Count; i++)
            {
                var (name, layer) = layers[i];
                if (layer is IResidualModule block) AddResidual(prefix + name, block);
                else Add(prefix + name, layer);
            }
        }

        private void AddResidual(string path, IResidualModule block)
        {
            var input = _current;
            AddSequence(block.Branch, path + ".branch.");
            var branch = _current;
            var shortcut = input;
            if (block.Shortcut is { } layers)
            {
                _current = input;
                AddSequence(layers, path + ".shortcut.");
                shortcut = _current;
            }
            _current = branch;
            Node("Add", path + ".add", shortcut);
            if (block.ReluAfterSum) Node("Relu", path + ".relu");
        }

        private void Add(string name, nn.Module layer)
        {
            switch (layer)
            {
                case BatchNorm norm:
                    {
                        var node = Node("BatchNormalization", name, Weight(norm.weight!), Weight(norm.bias!), Weight(norm.running_mean!), Weight(norm.running_var!));
                        node.Attribute.Add(new AttributeProto { Name = "epsilon", Type = AttributeProto.Types.AttributeType.Float, F = (float)norm.eps });
                        break;
                    }
                case Conv2d conv:
                    {
                        var node = Node("Conv", name, WeightsAndBias(conv.weight!, conv.bias));
                        node.Attribute.Add(Ints("kernel_shape", conv.kernel_size));
                        node.Attribute.Add(Ints("strides", conv.stride ?? [1, 1]));
                        node.Attribute.Add(Ints("pads", [.. conv.padding!, .. conv.padding!]));
                        node.Attribute.Add(Ints("dilations", conv.dilation ?? [1, 1]));
                        node.Attribute.Add(Int("group", conv.groups));
                        _outputs = conv.out_channels;
                        break;
                    }
                case Linear linear:
                    {
                        var node = Node("Gemm", name, WeightsAndBias(linear.weight!, linear.bias));
                        node.Attribute.Add(Int("transB", 1));
                        _outputs = linear.out_features;
                        break;
                    }
                case ReLU:
                    Node("Relu", name);
                    break;
                case MaxPool2d pool:
                    {
                        var node = Node("MaxPool", name);
                        node.Attribute.Add(Ints("kernel_shape", pool.kernel_size));
                        node.Attribute.Add(Ints("strides", pool.stride is { Length: > 0 } stride ? stride : pool.kernel_size));
                        var padding = pool.padding is { Length: > 0 } p ? p : new long[pool.kernel_size.Length];
                        node.Attribute.Add(Ints("pads", [.. padding, .. padding]));
                        break;
                    }
                case AdaptiveAvgPool2d:
                    Node("GlobalAveragePool", name);
                    break;
                case Flatten:
                    Node("Flatten", name).Attribute.Add(Int("axis", 1));
                    break;
                default:
                    break; // dropout: identity at inference
            }
        }

        public GraphProto Finish(int inputSize)
        {
            if (_graph.Node.Count == 0 || _outputs < 0) throw new NotSupportedException("cannot export to ONNX: the network has no convolution or linear layer");
            // The last node writes the graph's output under its public name.
            var last = _graph.Node[^1];
            last.Output.Clear();
            last.Output.Add(OutputName);
            _graph.Input.Add(Value(InputName, new TensorShapeProto.Types.Dimension { DimParam = "N" }, Dim(1), Dim(inputSize), Dim(inputSize)));
            _graph.Output.Add(Value(OutputName, new TensorShapeProto.Types.Dimension { DimParam = "N" }, Dim(_outputs)));
            return _graph;
        }

        private string[] WeightsAndBias(Tensor weight, Tensor? bias) => bias is null ? [Weight(weight)] : [Weight(weight), Weight(bias)];

        /// <summary>A trained tensor as an initializer under its state-dict key; in float16 behind a Cast to float32.</summary>
        private string Weight(Tensor values)
        {
            if (!stateNames.TryGetValue(values.Handle, out var name))
            {
                throw new NotSupportedException("cannot export to ONNX: a layer's weight is not among the network's parameters and buffers");
            }
            using var detached = values.detach();
            if (!float16)
            {
                using var floats = detached.to(ScalarType.Float32).contiguous();
                // ONNX raw data is little-endian, as is every platform FerSharp runs on (linux-x64).
                _graph.Initializer.Add(Raw(name, TensorProto.Types.DataType.Float, floats.shape, MemoryMarshal.AsBytes(floats.data<float>().ToArray().AsSpan())));
                return name;
            }
            using var halves = detached.to(ScalarType.Float16).contiguous();
            _graph.Initializer.Add(Raw(name, TensorProto.Types.DataType.Float16, halves.shape, MemoryMarshal.AsBytes(halves.data<Half>().ToArray().AsSpan())));
            var cast = new NodeProto { OpType = "Cast", Name = name + ".cast" };
            cast.Input.Add(name);
            cast.Output.Add(name + ".float");
            cast.Attribute.Add(Int("to", (long)TensorProto.Types.DataType.Float));
            _graph.Node.Add(cast);
            return name + ".float";
        }

        private static TensorProto Raw(string name, TensorProto.Types.DataType type, long[] shape, ReadOnlySpan<byte> bytes)
        {
            var proto = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
            proto.Dims.AddRange(shape);
            return proto;
        }

        private NodeProto Node(string op, string name, params string[] moreInputs)
        {
            var node = new NodeProto { OpType = op, Name = name };
            node.Input.Add(_current);
            node.Input.AddRange(moreInputs);
            node.Output.Add(name);
            _graph.Node.Add(node);
            _current = name;
            return node;
        }

        private static AttributeProto Ints(string name, IEnumerable<long> values)
        {
            var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            attribute.Ints.AddRange(values);
            return attribute;
        }

        private static AttributeProto Int(string name, long value) =>
            new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

        private static TensorShapeProto.Types.Dimension Dim(long value) => new() { DimValue = value };

        private static ValueInfoProto Value(string name, params TensorShapeProto.Types.Dimension[] dims)
        {
            var type = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
            type.Shape.Dim.AddRange(dims);
            return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = type } };
        }
    }
}
