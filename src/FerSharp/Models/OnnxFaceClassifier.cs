using FerSharp.Data;
using FerSharp.Evaluation;

using Microsoft.ML.OnnxRuntime;

namespace FerSharp.Models;

/// <summary>Settings of <see cref="OnnxFaceClassifier"/>.</summary>
public sealed record ClassifierOptions
{
    /// <summary><see cref="InferenceEngine.OnnxRuntime"/> (default) or <see cref="InferenceEngine.OpenCv"/>.</summary>
    public InferenceEngine Engine { get; init; } = InferenceEngine.OnnxRuntime;

    /// <summary>
    /// ONNX Runtime's threads per call. 1 by default: a face is a few hundred microseconds of work, and a
    /// server runs several calls at once, each on its own core.
    /// </summary>
    public int Threads { get; init; } = 1;

    /// <summary>
    /// Which network runs: by default the package's int8 copy on ONNX Runtime when it has one (about twice as
    /// fast; its accuracy is on the model card), else the float network.
    /// </summary>
    public NetworkPrecision Precision { get; init; } = NetworkPrecision.Auto;
}

/// <summary>
/// A model package's ONNX network (format 3) on ONNX Runtime or OpenCV's DNN module: recognition without
/// libtorch. The graph takes grey pixels 0..255 and normalizes them itself, as the package was trained.
/// </summary>
public sealed class OnnxFaceClassifier : IFaceClassifier
{
    /// <summary>Up to this many views go through the network in one call; more run in chunks of it.</summary>
    public const int MaxBatch = 64;

    private readonly InferenceSession? _session;
    private readonly RunOptions _run = new();
    private readonly OpenCvNetwork? _openCv;
    private readonly object _openCvGate = new();
    private readonly string _inputName;
    private readonly string _outputName;

    private OnnxFaceClassifier(ModelMetadata metadata, byte[] onnx, ClassifierOptions options, string? path, bool int8)
    {
        Metadata = metadata;
        Engine = options.Engine;
        Path = path;
        IsInt8 = int8;
        switch (options.Engine)
        {
            case InferenceEngine.OnnxRuntime:
                _session = OnnxRuntimeSessions.Create(onnx, options.Threads);
                _inputName = _session.InputNames[0];
                _outputName = _session.OutputNames[0];
                break;
            case InferenceEngine.OpenCv:
                _openCv = OpenCvNetwork.Create(OnnxGraphs.WithFloat32Initializers(onnx), metadata.InputSize);
                _inputName = _outputName = "";
                break;
            default:
                throw new NotSupportedException($"the {options.Engine} engine needs FerSharp.Training (TorchFaceClassifier); this library runs OnnxRuntime or OpenCv");
        }
    }

    public ModelMetadata Metadata { get; }
    public IReadOnlyList<string> ClassNames => Metadata.ClassNames;
    public InferenceEngine Engine { get; }

    /// <summary>Whether the package's int8 network runs (<see cref="ClassifierOptions.Precision"/>).</summary>
    public bool IsInt8 { get; }

    /// <summary>The package folder it was loaded from.</summary>
    public string? Path { get; }

    /// <summary>Loads a package folder (or a bare shipped name such as <c>fer2013-realtime</c>).</summary>
    /// <exception cref="InvalidDataException">
    /// The package is older than format 3 and holds TorchSharp weights only (<c>fer models upgrade</c> converts it),
    /// or its files are corrupt.
    /// </exception>
    public static OnnxFaceClassifier Load(string path, ClassifierOptions? options = null)
    {
        options ??= new ClassifierOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Threads, 1, nameof(options.Threads));
        var metadata = ModelPackage.ReadMetadata(path, out var folder, out var jsonPath);
        if (!metadata.HasOnnxNetwork)
        {
            throw new InvalidDataException($"{jsonPath}: this package (format {metadata.FormatVersion}) stores TorchSharp weights ({metadata.WeightsFile}) and no ONNX network; convert it with 'fer models upgrade {folder}'");
        }
        var int8 = UsesInt8(metadata, options, folder);
        var onnx = int8 ? ModelPackage.ReadInt8(folder, metadata) : ModelPackage.ReadWeights(folder, metadata);
        try
        {
            return new OnnxFaceClassifier(metadata, onnx, options, folder, int8);
        }
        catch (OnnxRuntimeException ex)
        {
            var file = int8 ? metadata.Int8!.File : metadata.WeightsFile;
            throw new InvalidDataException($"{System.IO.Path.Combine(folder, file)}: ONNX Runtime cannot load the network ({ex.Message})", ex);
        }
    }

    /// <summary>
    /// A classifier for an ONNX graph in memory (a package's <c>model.onnx</c>, or with <paramref name="int8"/> its
    /// <c>model.int8.onnx</c>) with its metadata.
    /// </summary>
    public static OnnxFaceClassifier FromGraph(ModelMetadata metadata, byte[] onnx, ClassifierOptions? options = null, bool int8 = false)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        ArgumentNullException.ThrowIfNull(onnx);
        options ??= new ClassifierOptions();
        if (int8 && options.Engine != InferenceEngine.OnnxRuntime) throw new NotSupportedException($"an int8 network runs on OnnxRuntime only, not {options.Engine}");
        return new OnnxFaceClassifier(metadata, onnx, options, null, int8);
    }

    /// <summary>Whether <paramref name="options"/> pick the package's int8 network; refuses an int8 request it cannot meet, naming why.</summary>
    private static bool UsesInt8(ModelMetadata metadata, ClassifierOptions options, string folder) => options.Precision switch
    {
        NetworkPrecision.Float => false,
        NetworkPrecision.Auto => metadata.Int8 is not null && options.Engine == InferenceEngine.OnnxRuntime,
        NetworkPrecision.Int8 when options.Engine != InferenceEngine.OnnxRuntime =>
            throw new NotSupportedException($"an int8 network runs on OnnxRuntime only, not {options.Engine}"),
        NetworkPrecision.Int8 when metadata.Int8 is null =>
            throw new InvalidDataException($"{System.IO.Path.Combine(folder, "model.json")}: the package has no int8 network (make one with 'fer models quantize {folder}')"),
        NetworkPrecision.Int8 => true,
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Precision, "unknown precision"),
    };

    public float[][] PredictProbabilities(IReadOnlyList<byte[]> faces, TtaMode tta = TtaMode.None)
    {
        ArgumentNullException.ThrowIfNull(faces);
        if (faces.Count == 0) return [];
        var views = FaceViews.Count(tta, Metadata.FlipAveraging);
        var facesPerCall = Math.Max(1, MaxBatch / views);
        if (faces.Count > facesPerCall)
        {
            var rows = new List<float[]>(faces.Count);
            for (var start = 0; start < faces.Count; start += facesPerCall)
            {
                rows.AddRange(PredictProbabilities(faces.Skip(start).Take(facesPerCall).ToList(), tta));
            }
            return [.. rows];
        }
        var input = FaceViews.Build(faces, tta, Metadata.FlipAveraging);
        var logits = Forward(input, views * faces.Count, out var classes);
        if (classes != ClassNames.Count)
        {
            throw new InvalidDataException($"the network gives {classes} scores per face but model.json names {ClassNames.Count} classes");
        }
        return FaceViews.AverageSoftmax(logits, faces.Count, views, classes);
    }

    /// <summary>Logits [batch, classes] of faces given as grey pixel values 0..255, [batch,1,48,48].</summary>
    public float[] Forward(float[] pixels, int batch, out int classes)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (_openCv is { } openCv)
        {
            lock (_openCvGate) return openCv.Forward(pixels, batch, out classes);
        }
        const int side = FaceDataset.ImageSize;
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, [batch, 1, side, side]);
        using var outputs = _session!.Run(_run, [_inputName], [input], [_outputName]);
        var logits = outputs[0];
        var shape = logits.GetTensorTypeAndShape().Shape;
        classes = (int)shape[^1];
        return logits.GetTensorDataAsSpan<float>().ToArray();
    }

    public void Dispose()
    {
        _session?.Dispose();
        _run.Dispose();
        _openCv?.Dispose();
    }
}
