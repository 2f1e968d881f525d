using System.Runtime.InteropServices;
using System.Text.Json;

using FerSharp.Data;
using FerSharp.Inference;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>
/// A trained network on libtorch plus its <c>model.json</c>: what training saves and evaluation loads. A package
/// is a folder holding <c>model.json</c> and the network file it names (<see cref="ModelPackage"/>);
/// recognition loads the same package without libtorch (<see cref="OnnxFaceClassifier"/>).
/// </summary>
public sealed class EmotionModel : IDisposable
{
    private readonly object _gate = new();
    private FoldedNetwork? _folded;
    private nn.Module<Tensor, Tensor>? _bfloat16Network;
    private bool _inferenceBuilt;
    private InferenceEngine _engine = InferenceEngine.TorchSharp;

    public EmotionModel(ModelMetadata metadata, nn.Module<Tensor, Tensor> network)
    {
        Metadata = metadata ?? throw new ArgumentNullException(nameof(metadata));
        Network = network ?? throw new ArgumentNullException(nameof(network));
        Network.eval();
    }

    public ModelMetadata Metadata { get; private set; }

    /// <summary>
    /// The trained network, as saved. Predictions run through a copy with batch norms folded into the
    /// layers before them, made at the first prediction for the <see cref="Engine"/>: change the weights
    /// only before predicting (training wraps its network here just to save it).
    /// </summary>
    public nn.Module<Tensor, Tensor> Network { get; }
    public IReadOnlyList<string> ClassNames => Metadata.ClassNames;
    public string? Path { get; private set; }

    /// <summary>
    /// What runs predictions: <see cref="InferenceEngine.TorchSharp"/> unless set to
    /// <see cref="InferenceEngine.TorchSharpBFloat16"/>. Setting it drops the current inference copy (the next
    /// prediction makes one for the new engine).
    /// </summary>
    /// <exception cref="NotSupportedException">
    /// An engine other than these two (ONNX Runtime and OpenCV run the package through
    /// <see cref="OnnxFaceClassifier"/>); TorchSharpBFloat16 for a network whose architecture is not in the
    /// <see cref="ModelRegistry"/> (nothing to make the copy from).
    /// </exception>
    public InferenceEngine Engine
    {
        get
        {
            lock (_gate) return _engine;
        }
        set
        {
            if (value is not (InferenceEngine.TorchSharp or InferenceEngine.TorchSharpBFloat16))
            {
                throw new NotSupportedException($"EmotionModel runs on libtorch (TorchSharp or TorchSharpBFloat16); the {value} engine runs a package through OnnxFaceClassifier");
            }
            if (value == InferenceEngine.TorchSharpBFloat16 && !ModelRegistry.Contains(Metadata.Architecture))
            {
                throw new NotSupportedException($"the TorchSharpBFloat16 engine copies the network, and architecture '{Metadata.Architecture}' is not registered; use the TorchSharp engine");
            }
            lock (_gate)
            {
                _engine = value;
                DropInference();
            }
        }
    }

    /// <summary>A package's <c>model.json</c>, checked as <see cref="Load"/> checks it, without reading the weights.</summary>
    public static ModelMetadata ReadMetadata(string path) => ModelPackage.ReadMetadata(path);

    /// <summary>
    /// Loads a package: its ONNX network (format 3; the graph's weights, by their state-dict names) or the
    /// TorchSharp weights of an older package, in float32 whatever the stored precision.
    /// </summary>
    public static EmotionModel Load(string path)
    {
        var metadata = ModelPackage.ReadMetadata(path, out var folder, out var jsonPath);
        Architecture architecture;
        try
        {
            architecture = ModelRegistry.Get(metadata.Architecture);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{jsonPath}: {ex.Message}", ex);
        }
        var bytes = ModelPackage.ReadWeights(folder, metadata);
        var weightsPath = System.IO.Path.Combine(folder, metadata.WeightsFile);
        var network = architecture.Create(metadata.ClassNames.Count);
        try
        {
            if (metadata.HasOnnxNetwork)
            {
                OnnxWeights.Load(network, bytes);
            }
            else
            {
                using var stream = new MemoryStream(bytes);
                if (metadata.WeightsDtype == "float16")
                {
                    network.half();
                    network.load(stream, strict: true);
                    network.to(ScalarType.Float32); // compute in float32; float16 is only the storage format
                }
                else
                {
                    network.load(stream, strict: true);
                }
            }
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException or FormatException or ExternalException or InvalidDataException or Google.Protobuf.InvalidProtocolBufferException)
        {
            network.Dispose();
            throw new InvalidDataException($"{weightsPath}: weights do not fit architecture '{metadata.Architecture}' with {metadata.ClassNames.Count} classes ({ex.Message})", ex);
        }
        return new EmotionModel(metadata, network) { Path = folder };
    }

    /// <summary>
    /// Writes the package into <paramref name="folder"/> in the current format: <c>model.json</c> and the ONNX
    /// network (<see cref="ModelMetadata.OnnxFileName"/>) that recognition runs and training reads back.
    /// Files are replaced only once complete; an older package's <c>weights.bin</c> is removed.
    /// </summary>
    /// <param name="folder">Package folder (created if needed).</param>
    /// <param name="float16">Store weights in half precision (for shipping: half the size).</param>
    public void Save(string folder, bool float16 = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (File.Exists(folder)) throw new IOException($"{folder}: is a file; a model package is a folder (model.json and model.onnx)");
        Directory.CreateDirectory(folder);
        byte[] onnx;
        lock (_gate)
        {
            Metadata = Metadata with
            {
                FormatVersion = ModelMetadata.CurrentFormatVersion,
                WeightsFile = ModelMetadata.OnnxFileName,
                WeightsDtype = float16 ? "float16" : "float32",
                Parameters = Network.parameters().Sum(p => p.numel()),
            };
            onnx = OnnxExport.Export(this, float16);
        }
        Metadata = Metadata with { WeightsSha256 = ModelPackage.Sha256(onnx) };
        if (Metadata.Int8 is { } int8 && (!string.Equals(int8.FromWeightsSha256, Metadata.WeightsSha256, StringComparison.OrdinalIgnoreCase)
            || !File.Exists(System.IO.Path.Combine(folder, int8.File))))
        {
            // The int8 copy belongs to the network it was made from, in its own folder: a new network or a new folder goes without it.
            Metadata = Metadata with
            {
                Int8 = null,
                Metrics = Metadata.MetricsWithoutInt8(),
            };
        }
        AtomicFile.WriteAllBytes(System.IO.Path.Combine(folder, Metadata.WeightsFile), onnx);
        AtomicFile.WriteAllText(System.IO.Path.Combine(folder, "model.json"), JsonSerializer.Serialize(Metadata, ModelMetadata.JsonOptions));
        var legacy = System.IO.Path.Combine(folder, "weights.bin");
        if (File.Exists(legacy)) File.Delete(legacy);
        Path = folder;
    }

    public void UpdateMetadata(Func<ModelMetadata, ModelMetadata> update)
    {
        ArgumentNullException.ThrowIfNull(update);
        Metadata = update(Metadata);
    }

    /// <summary>uint8 [B,1,48,48] (or float in 0..255) to normalized float input.</summary>
    public Tensor Preprocess(Tensor faces) => Preprocessing.Normalize(faces, Metadata.Normalization);

    /// <summary>
    /// Class probabilities [B, classes] for uint8 faces [B,1,48,48], averaged with the mirror images when the
    /// package says so (<see cref="ModelMetadata.FlipAveraging"/>). Safe to call from several threads.
    /// </summary>
    public Tensor PredictProbabilities(Tensor faces)
    {
        ArgumentNullException.ThrowIfNull(faces);
        lock (_gate) return ProbabilitiesLocked(faces, ForwardLocked);
    }

    private Tensor ProbabilitiesLocked(Tensor faces, Func<Tensor, Tensor> forward)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using var input = Preprocess(faces);
        if (!Metadata.FlipAveraging)
        {
            return nn.functional.softmax(forward(input), 1).MoveToOuterDisposeScope();
        }
        // One forward pass over faces and mirrors: at batch 1 that costs far less than two calls.
        var count = input.shape[0];
        var both = nn.functional.softmax(forward(cat([input, input.flip(3)], 0)), 1);
        return both.narrow(0, 0, count).AddTensor(both.narrow(0, count, count)).DivScalarInPlace(2).MoveToOuterDisposeScope();
    }

    /// <summary>Logits [B, classes] for an already pre-processed float input (see <see cref="Preprocess"/>), as in eval mode.</summary>
    public Tensor Forward(Tensor preprocessed)
    {
        ArgumentNullException.ThrowIfNull(preprocessed);
        lock (_gate)
        {
            using var noGrad = no_grad();
            return ForwardLocked(preprocessed);
        }
    }

    private Tensor ForwardLocked(Tensor input)
    {
        BuildInference();
        if (_bfloat16Network is { } reduced) return ForwardBFloat16(reduced, input);
        return _folded is { } folded ? folded.Forward(input) : Network.forward(input);
    }

    private void BuildInference()
    {
        if (_inferenceBuilt) return;
        if (_engine == InferenceEngine.TorchSharpBFloat16)
        {
            _bfloat16Network = CopyInBFloat16();
            _folded = FoldedNetwork.TryCreate(_bfloat16Network);
        }
        else
        {
            _folded = FoldedNetwork.TryCreate(Network);
        }
        _inferenceBuilt = true;
    }

    /// <summary>
    /// A copy of <see cref="Network"/> in bfloat16 with its convolution weights channels-last, the layout
    /// oneDNN's bfloat16 convolutions run in; folding a batch norm leaves that convolution's weights dense
    /// NCHW again, and it was measured that way (fer2013-best at batch 1 with the input channels-last: 11.7 ms
    /// per face against 13.3 ms NCHW). A copy because <see cref="Network"/> stays the float32 weights that
    /// are saved and trained.
    /// </summary>
    private nn.Module<Tensor, Tensor> CopyInBFloat16()
    {
        var copy = ModelRegistry.Get(Metadata.Architecture).Create(ClassNames.Count);
        try
        {
            using (no_grad()) copy.load_state_dict(Network.state_dict(), strict: true);
            copy.eval();
            copy.to(ScalarType.BFloat16);
            Training.MemoryLayout.ToChannelsLast(copy);
            return copy;
        }
        catch
        {
            copy.Dispose();
            throw;
        }
    }

    private Tensor ForwardBFloat16(nn.Module<Tensor, Tensor> reduced, Tensor input)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var x = Training.MemoryLayout.ChannelsLast(input.to(ScalarType.BFloat16));
        var logits = _folded is { } folded ? folded.Forward(x) : reduced.forward(x);
        return logits.to(ScalarType.Float32).MoveToOuterDisposeScope();
    }

    private void DropInference()
    {
        _folded?.Dispose();
        _folded = null;
        _bfloat16Network?.Dispose();
        _bfloat16Network = null;
        _inferenceBuilt = false;
    }

    /// <summary>Probabilities for faces given as 48x48 byte images, one row per face.</summary>
    public float[][] PredictProbabilities(IReadOnlyList<byte[]> faces) => PredictRows(faces, PredictProbabilities);

    private static void EnsureFaceSize(byte[] face, int index)
    {
        if (face.Length != FaceDataset.PixelsPerImage)
        {
            throw new ArgumentException($"face {index} has {face.Length} bytes; expected 48x48 = {FaceDataset.PixelsPerImage}");
        }
    }

    /// <summary>
    /// Runs <paramref name="predict"/> on 48x48 byte faces stacked as uint8 [B,1,48,48] and returns its [B, classes]
    /// output one row per face; the way to batch faces for a prediction other than the plain one (e.g. TTA).
    /// </summary>
    public static float[][] PredictRows(IReadOnlyList<byte[]> faces, Func<Tensor, Tensor> predict)
    {
        ArgumentNullException.ThrowIfNull(faces);
        ArgumentNullException.ThrowIfNull(predict);
        if (faces.Count == 0) return [];
        var flat = new byte[faces.Count * FaceDataset.PixelsPerImage];
        for (var i = 0; i < faces.Count; i++)
        {
            EnsureFaceSize(faces[i], i);
            Buffer.BlockCopy(faces[i], 0, flat, i * FaceDataset.PixelsPerImage, FaceDataset.PixelsPerImage);
        }
        using var input = tensor(flat, [faces.Count, 1, FaceDataset.ImageSize, FaceDataset.ImageSize], ScalarType.Byte);
        using var probs = predict(input);
        using var rows = probs.contiguous();
        var values = rows.data<float>().ToArray();
        var classes = (int)rows.shape[1];
        return Enumerable.Range(0, faces.Count).Select(i => values.AsSpan(i * classes, classes).ToArray()).ToArray();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            DropInference();
            Network.Dispose();
        }
    }
}

public static class Preprocessing
{
    public static Tensor Normalize(Tensor faces, Normalization normalization)
    {
        ArgumentNullException.ThrowIfNull(faces);
        ArgumentNullException.ThrowIfNull(normalization);
        // Not in place: for float input to() can share storage with the caller's tensor.
        using var scaled = faces.to(ScalarType.Float32).DivScalar(255);
        return NormalizeScaled(scaled, normalization);
    }

    /// <summary>For input already in [0,1] (e.g. after augmentation), [B,1,H,W].</summary>
    public static Tensor NormalizeScaled(Tensor scaled, Normalization normalization)
    {
        ArgumentNullException.ThrowIfNull(scaled);
        ArgumentNullException.ThrowIfNull(normalization);
        normalization.EnsureKnown("input normalization");
        var global = normalization.Mean != 0 || normalization.Std != 1;
        if (!normalization.StandardizesEachFace)
        {
            return global ? scaled.SubScalar(normalization.Mean).DivScalarInPlace(normalization.Std) : scaled.alias();
        }
        using var scope = NewDisposeScope();
        var mean = scaled.mean([1, 2, 3], keepdim: true);
        var centred = scaled.sub(mean);
        var variance = centred.square().mean([1, 2, 3], keepdim: true);
        var result = centred.div_(variance.add_(Normalization.PerFaceEpsilon).sqrt_());
        if (global) result = result.sub_(normalization.Mean).div_(normalization.Std);
        return result.MoveToOuterDisposeScope();
    }
}
