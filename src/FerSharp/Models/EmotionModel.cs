using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;

using FerSharp.Data;
using FerSharp.Inference;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>What runs a model's predictions.</summary>
public enum InferenceEngine
{
    /// <summary>
    /// The faster of the two on this machine when the network exports to ONNX (every registered architecture):
    /// both are timed on one face when the model first predicts (<see cref="EmotionModel.EngineTiming"/>);
    /// TorchSharp for a network that does not export.
    /// </summary>
    Auto,
    /// <summary>OpenCV's DNN module on the network's ONNX export.</summary>
    OpenCv,
    /// <summary>libtorch through TorchSharp, batch norms folded (<see cref="FoldedNetwork"/>).</summary>
    TorchSharp,
    /// <summary>
    /// libtorch on a bfloat16 copy of the network, input channels-last, batch norms folded: on a CPU with
    /// native bfloat16 arithmetic (AVX-512 BF16, AMX) fer2013-best ran 1.5-2.1x faster per face at batch 1 and
    /// `fer evaluate` 2x (docs/BENCHMARKS.md, "The host of 2026-12-05"); the small networks gained nothing
    /// there, and elsewhere libtorch emulates bfloat16, slower than float32. bfloat16 keeps 8 bits of mantissa, so a few answers in a thousand can differ from float32:
    /// never chosen by <see cref="Auto"/>, and package scores (model cards) are float32.
    /// </summary>
    TorchSharpBFloat16,
}

/// <summary>
/// A trained network plus its <c>model.json</c>: what <c>evaluate</c>, <c>predict</c> and <c>serve</c> load.
/// A package is a folder holding <c>model.json</c> and the weights file it names.
/// </summary>
public sealed class EmotionModel : IDisposable
{
    private readonly object _gate = new();
    private FoldedNetwork? _folded;
    private OpenCvNetwork? _openCv;
    private nn.Module<Tensor, Tensor>? _bfloat16Network;
    private bool _inferenceBuilt;
    private InferenceEngine _engine;
    private InferenceEngine _activeEngine;
    private EngineTiming? _engineTiming;

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
    /// What runs predictions; <see cref="InferenceEngine.Auto"/> unless set. Setting it drops the current
    /// inference copy (the next prediction makes one for the new engine).
    /// </summary>
    /// <exception cref="NotSupportedException">
    /// OpenCv for a network that does not export to ONNX (the layer is named); TorchSharpBFloat16 for a network
    /// whose architecture is not in the <see cref="ModelRegistry"/> (nothing to make the copy from).
    /// </exception>
    public InferenceEngine Engine
    {
        get
        {
            lock (_gate) return _engine;
        }
        set
        {
            if (value == InferenceEngine.OpenCv && OnnxExport.FindUnsupportedLayer(Network) is { } layer)
            {
                throw new NotSupportedException($"the OpenCV engine needs an ONNX export, and {Metadata.Architecture} has layer {layer} that does not export; use the TorchSharp engine");
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

    /// <summary>
    /// Where <see cref="InferenceEngine.Auto"/> remembers its choice per package and machine
    /// (<see cref="EngineChoiceCache"/>); null to time the engines at every load.
    /// </summary>
    public string? EngineCacheFolder { get; set; } = EngineChoiceCache.DefaultFolder();

    /// <summary>The engine that runs (or will run) predictions: <see cref="Engine"/> with Auto resolved.</summary>
    public InferenceEngine ActiveEngine
    {
        get
        {
            lock (_gate)
            {
                BuildInference();
                return _activeEngine;
            }
        }
    }

    /// <summary>
    /// How <see cref="InferenceEngine.Auto"/> chose <see cref="ActiveEngine"/>; null when the engine was set by
    /// hand or the network does not export to ONNX (nothing to choose between).
    /// </summary>
    public EngineTiming? EngineTiming
    {
        get
        {
            lock (_gate)
            {
                BuildInference();
                return _engineTiming;
            }
        }
    }

    /// <summary>
    /// How long <see cref="InferenceEngine.Auto"/> may spend timing the engines beyond its first few calls. The
    /// faster engine differs by model and machine: OpenCV was 1.4-2× faster for every shipped model on an AVX2
    /// host, libtorch 1.3× faster for fer2013-best on an AVX-512 one (docs/BENCHMARKS.md, "Inference engines").
    /// </summary>
    private static readonly TimeSpan EngineTimingBudget = TimeSpan.FromMilliseconds(150);

    /// <summary>A package's <c>model.json</c>, checked as <see cref="Load"/> checks it, without reading the weights.</summary>
    public static ModelMetadata ReadMetadata(string path) => ReadMetadata(path, out _, out _);

    private static ModelMetadata ReadMetadata(string path, out string folder, out string jsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = ModelCatalog.Resolve(path);
        folder = Directory.Exists(path) ? path : System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
        jsonPath = Directory.Exists(path) ? System.IO.Path.Combine(path, "model.json") : path;
        if (!File.Exists(jsonPath))
        {
            throw new FileNotFoundException(Directory.Exists(path)
                ? $"{path}: not a model package (no model.json inside)"
                : $"{path}: no such model package{ShippedHint(path)}", jsonPath);
        }
        ModelMetadata metadata;
        try
        {
            metadata = JsonSerializer.Deserialize<ModelMetadata>(File.ReadAllText(jsonPath), ModelMetadata.JsonOptions)
                ?? throw new InvalidDataException("empty");
        }
        catch (Exception ex) when (ex is JsonException or InvalidDataException or NotSupportedException)
        {
            throw new InvalidDataException($"{jsonPath}: not a valid model.json ({ex.Message})", ex);
        }
        if (metadata.FormatVersion > ModelMetadata.CurrentFormatVersion)
        {
            throw new InvalidDataException($"{jsonPath}: format version {metadata.FormatVersion} is newer than this FerSharp understands ({ModelMetadata.CurrentFormatVersion}); upgrade FerSharp");
        }
        if (metadata.ClassNames is not { Count: >= 2 })
        {
            throw new InvalidDataException($"{jsonPath}: class_names must list at least two classes");
        }
        metadata.Normalization.EnsureKnown(jsonPath);
        if (metadata.InputSize != FaceDataset.ImageSize || metadata.InputChannels != 1)
        {
            throw new InvalidDataException($"{jsonPath}: input {metadata.InputChannels}x{metadata.InputSize}x{metadata.InputSize} is not supported (expected 1x48x48)");
        }
        return metadata;
    }

    private static string ShippedHint(string path) =>
        ModelCatalog.IsBareName(path) && ModelCatalog.ShippedNames() is { Count: > 0 } names ? $" (shipped models: {string.Join(", ", names)})" : "";

    public static EmotionModel Load(string path)
    {
        var metadata = ReadMetadata(path, out var folder, out var jsonPath);
        Architecture architecture;
        try
        {
            architecture = ModelRegistry.Get(metadata.Architecture);
        }
        catch (ArgumentException ex)
        {
            throw new InvalidDataException($"{jsonPath}: {ex.Message}", ex);
        }
        var weightsPath = System.IO.Path.Combine(folder, metadata.WeightsFile);
        if (!File.Exists(weightsPath))
        {
            throw new FileNotFoundException($"{weightsPath}: weights file named in model.json is missing", weightsPath);
        }
        var bytes = File.ReadAllBytes(weightsPath);
        if (metadata.WeightsSha256 is { } expected && !string.Equals(expected, Sha256(bytes), StringComparison.OrdinalIgnoreCase))
        {
            throw new InvalidDataException($"{weightsPath}: checksum does not match model.json (file corrupt or replaced)");
        }
        if (metadata.WeightsDtype is not ("float32" or "float16"))
        {
            throw new InvalidDataException($"{jsonPath}: weights_dtype '{metadata.WeightsDtype}' is not float32 or float16");
        }
        var network = architecture.Create(metadata.ClassNames.Count);
        try
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
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or IOException or FormatException or ExternalException)
        {
            network.Dispose();
            throw new InvalidDataException($"{weightsPath}: weights do not fit architecture '{metadata.Architecture}' with {metadata.ClassNames.Count} classes ({ex.Message})", ex);
        }
        return new EmotionModel(metadata, network) { Path = folder };
    }

    /// <summary>Writes the package into <paramref name="folder"/>, replacing files only once both are complete.</summary>
    /// <param name="folder">Package folder (created if needed).</param>
    /// <param name="float16">Store weights in half precision (for shipping: half the size).</param>
    public void Save(string folder, bool float16 = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (File.Exists(folder)) throw new IOException($"{folder}: is a file; a model package is a folder (model.json and weights)");
        Directory.CreateDirectory(folder);
        byte[] weights;
        lock (_gate)
        {
            using var ms = new MemoryStream();
            if (float16)
            {
                Network.half();
                try
                {
                    Network.save(ms);
                }
                finally
                {
                    Network.to(ScalarType.Float32);
                }
            }
            else
            {
                Network.save(ms);
            }
            weights = ms.ToArray();
        }
        Metadata = Metadata with
        {
            WeightsDtype = float16 ? "float16" : "float32",
            WeightsSha256 = Sha256(weights),
            Parameters = Network.parameters().Sum(p => p.numel()),
        };
        AtomicFile.WriteAllBytes(System.IO.Path.Combine(folder, Metadata.WeightsFile), weights);
        AtomicFile.WriteAllText(System.IO.Path.Combine(folder, "model.json"), JsonSerializer.Serialize(Metadata, ModelMetadata.JsonOptions));
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
        if (_openCv is { } openCv) return openCv.Forward(input);
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
            _activeEngine = InferenceEngine.TorchSharpBFloat16;
            _inferenceBuilt = true;
            return;
        }
        var cacheKey = Metadata.WeightsSha256 is { } sha ? EngineChoiceCache.Key(sha) : null;
        if (_engine == InferenceEngine.Auto && cacheKey is not null && OnnxExport.FindUnsupportedLayer(Network) is null
            && EngineChoiceCache.TryGet(EngineCacheFolder, cacheKey) is { } remembered)
        {
            // The choice an earlier run timed for these weights on this machine: build only that engine.
            if (remembered.Faster == InferenceEngine.OpenCv) _openCv = OpenCvNetwork.Create(OnnxExport.ExportNetwork(Network, Metadata.InputSize), Metadata.InputSize);
            else _folded = FoldedNetwork.TryCreate(Network);
            _engineTiming = remembered;
            _activeEngine = remembered.Faster;
            _inferenceBuilt = true;
            return;
        }
        if (_engine != InferenceEngine.TorchSharp && OnnxExport.FindUnsupportedLayer(Network) is null)
        {
            _openCv = OpenCvNetwork.Create(OnnxExport.ExportNetwork(Network, Metadata.InputSize), Metadata.InputSize);
        }
        if (_openCv is null || _engine == InferenceEngine.Auto)
        {
            _folded = FoldedNetwork.TryCreate(Network);
        }
        if (_openCv is { } openCv && _engine == InferenceEngine.Auto)
        {
            _engineTiming = TimeEngines(openCv);
            if (cacheKey is not null) EngineChoiceCache.Save(EngineCacheFolder, cacheKey, _engineTiming);
            if (_engineTiming.Faster == InferenceEngine.OpenCv)
            {
                _folded?.Dispose();
                _folded = null;
            }
            else
            {
                openCv.Dispose();
                _openCv = null;
            }
        }
        _activeEngine = _openCv is null ? InferenceEngine.TorchSharp : InferenceEngine.OpenCv;
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

    /// <summary>
    /// Both engines on the path a photo or video face takes (<see cref="PredictProbabilities(IReadOnlyList{byte[]})"/>),
    /// at batch 1 because real time is one face at a time; what a face shows does not change the cost.
    /// </summary>
    private EngineTiming TimeEngines(OpenCvNetwork openCv)
    {
        var face = new byte[FaceDataset.PixelsPerImage];
        for (var p = 0; p < face.Length; p++) face[p] = (byte)(p * 7 % 256);
        IReadOnlyList<byte[]> probe = [face];
        var folded = _folded;
        Tensor Forward(Tensor input) => folded is null ? Network.forward(input) : folded.Forward(input);
        return EngineTiming.Measure(
            () => PredictOnOpenCv(openCv, probe),
            () => PredictRows(probe, faces => ProbabilitiesLocked(faces, Forward)),
            EngineTimingBudget);
    }

    private void DropInference()
    {
        _folded?.Dispose();
        _folded = null;
        _openCv?.Dispose();
        _openCv = null;
        _bfloat16Network?.Dispose();
        _bfloat16Network = null;
        _engineTiming = null;
        _inferenceBuilt = false;
    }

    /// <summary>Probabilities for faces given as 48x48 byte images, one row per face.</summary>
    public float[][] PredictProbabilities(IReadOnlyList<byte[]> faces)
    {
        ArgumentNullException.ThrowIfNull(faces);
        lock (_gate)
        {
            BuildInference();
            if (_openCv is { } openCv && faces.Count > 0) return PredictOnOpenCv(openCv, faces);
        }
        return PredictRows(faces, PredictProbabilities);
    }

    /// <summary>
    /// The photo and video path on the OpenCV engine, without libtorch: at batch 1 its dozen small tensor
    /// ops (scaling, mirroring, softmax, averaging) took fer2013-realtime from 2.4-2.6 to 3.8 ms per face on
    /// the AVX2 host measured (docs/BENCHMARKS.md, "Inference engines").
    /// Same arithmetic as <see cref="PredictProbabilities(Tensor)"/> (<see cref="Preprocessing.NormalizeFace"/>);
    /// a flip-averaging package predicts each face and its mirror in one batch.
    /// </summary>
    private float[][] PredictOnOpenCv(OpenCvNetwork openCv, IReadOnlyList<byte[]> faces)
    {
        const int side = FaceDataset.ImageSize;
        const int pixels = FaceDataset.PixelsPerImage;
        var count = faces.Count;
        var views = Metadata.FlipAveraging ? 2 : 1;
        var input = new float[views * count * pixels];
        for (var i = 0; i < count; i++)
        {
            var face = faces[i];
            EnsureFaceSize(face, i);
            Preprocessing.NormalizeFace(face, side, Metadata.Normalization, input.AsSpan(i * pixels, pixels),
                views == 2 ? input.AsSpan((count + i) * pixels, pixels) : default);
        }
        var logits = openCv.Forward(input, views * count, out var classes);
        var rows = new float[count][];
        for (var i = 0; i < count; i++)
        {
            var row = Softmax(logits.AsSpan(i * classes, classes));
            if (views == 2)
            {
                var mirrored = Softmax(logits.AsSpan((count + i) * classes, classes));
                for (var c = 0; c < classes; c++) row[c] = (row[c] + mirrored[c]) / 2;
            }
            rows[i] = row;
        }
        return rows;
    }

    private static void EnsureFaceSize(byte[] face, int index)
    {
        if (face.Length != FaceDataset.PixelsPerImage)
        {
            throw new ArgumentException($"face {index} has {face.Length} bytes; expected 48x48 = {FaceDataset.PixelsPerImage}");
        }
    }

    private static float[] Softmax(ReadOnlySpan<float> logits)
    {
        var max = float.NegativeInfinity;
        foreach (var value in logits) max = Math.Max(max, value);
        var result = new float[logits.Length];
        var sum = 0f;
        for (var c = 0; c < logits.Length; c++) sum += result[c] = MathF.Exp(logits[c] - max);
        for (var c = 0; c < logits.Length; c++) result[c] /= sum;
        return result;
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

    internal static string Sha256(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
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

    /// <summary>
    /// The same arithmetic as <see cref="NormalizeScaled"/> on one face of 0..255 bytes, written into
    /// <paramref name="output"/> (and mirrored into <paramref name="mirror"/> when given): the path of the
    /// engines that run without libtorch.
    /// </summary>
    public static void NormalizeFace(ReadOnlySpan<byte> face, int side, Normalization normalization, Span<float> output, Span<float> mirror = default)
    {
        ArgumentNullException.ThrowIfNull(normalization);
        normalization.EnsureKnown("input normalization");
        var mean = (float)normalization.Mean;
        var std = (float)normalization.Std;
        float shift = 0, scale = 1;
        if (normalization.StandardizesEachFace)
        {
            double sum = 0;
            foreach (var p in face) sum += p / 255.0;
            var faceMean = sum / face.Length;
            double squares = 0;
            foreach (var p in face)
            {
                var d = p / 255.0 - faceMean;
                squares += d * d;
            }
            shift = (float)faceMean;
            scale = (float)(1 / Math.Sqrt(squares / face.Length + Normalization.PerFaceEpsilon));
        }
        for (var p = 0; p < face.Length; p++)
        {
            var value = ((face[p] / 255f - shift) * scale - mean) / std;
            output[p] = value;
            if (!mirror.IsEmpty) mirror[p - p % side + side - 1 - p % side] = value;
        }
    }
}
