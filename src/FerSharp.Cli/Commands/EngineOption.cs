using System.CommandLine;

using FerSharp.Inference;
using FerSharp.Models;
using FerSharp.Training;

namespace FerSharp.Cli.Commands;

/// <summary><c>--engine</c>: what runs the network, for the commands that predict.</summary>
internal static class EngineOption
{
    public static Option<InferenceEngine> Create() => new("--engine")
    {
        Description = "What runs the network: OnnxRuntime (default; the package's ONNX graph), OpenCv (the same graph on OpenCV's DNN module), TorchSharp (libtorch), or TorchSharpBFloat16 (a bfloat16 copy on libtorch: faster for the larger networks on CPUs with AVX-512 BF16 or AMX, slower elsewhere; a few answers in a thousand may differ from float32).",
        DefaultValueFactory = _ => InferenceEngine.OnnxRuntime,
    };

    /// <summary>For commands that score on libtorch (<c>fer evaluate</c>): the two libtorch engines.</summary>
    public static Option<InferenceEngine> CreateTorch() => new("--engine")
    {
        Description = "What runs the network: TorchSharp (default; libtorch in float32) or TorchSharpBFloat16 (a bfloat16 copy: about 2x faster for the larger networks on CPUs with AVX-512 BF16 or AMX, slower elsewhere; a few answers in a thousand may differ from float32). With --detect, also OnnxRuntime or OpenCv, as 'fer predict' runs it.",
        DefaultValueFactory = _ => InferenceEngine.TorchSharp,
    };

    /// <summary><c>--precision</c>: which of a package's networks ONNX Runtime runs.</summary>
    public static Option<NetworkPrecision> CreatePrecision() => new("--precision")
    {
        Description = "Which network runs: Auto (default: the package's int8 copy on OnnxRuntime when it has one, about twice as fast, its accuracy on the model card; the float network otherwise), Float (the float network, the same answers on every engine), or Int8 (OnnxRuntime only; made by 'fer models quantize').",
        DefaultValueFactory = _ => NetworkPrecision.Auto,
    };

    /// <summary>A recognizer for the package on the chosen engine.</summary>
    public static EmotionRecognizer LoadRecognizer(string? modelPath, RecognizerOptions settings, InferenceEngine engine, NetworkPrecision precision = NetworkPrecision.Auto)
    {
        var path = modelPath ?? ShippedModels.DefaultPath();
        var classifier = LoadClassifier(path, engine, settings.ThreadsPerCall, precision);
        try
        {
            return new EmotionRecognizer(classifier, null, settings);
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The package's classifier on the chosen engine. A package older than format 3 (TorchSharp weights only) is
    /// exported to ONNX in memory for the ONNX engines, so every package runs on every engine.
    /// </summary>
    public static IFaceClassifier LoadClassifier(string path, InferenceEngine engine, int threads = 1, NetworkPrecision precision = NetworkPrecision.Auto)
    {
        try
        {
            if (engine is InferenceEngine.TorchSharp or InferenceEngine.TorchSharpBFloat16)
            {
                if (precision == NetworkPrecision.Int8) throw new UserFacingException($"--precision Int8 runs on --engine OnnxRuntime only, not {engine}");
                return TorchFaceClassifier.Load(path, engine);
            }
            if (precision == NetworkPrecision.Int8 && engine != InferenceEngine.OnnxRuntime)
            {
                throw new UserFacingException($"--precision Int8 runs on --engine OnnxRuntime only, not {engine}");
            }
            var options = new ClassifierOptions { Engine = engine, Threads = threads, Precision = precision };
            if (ModelPackage.ReadMetadata(path).HasOnnxNetwork) return OnnxFaceClassifier.Load(path, options);
            using var model = EmotionModel.Load(path);
            return OnnxFaceClassifier.FromGraph(model.Metadata, OnnxExport.Export(model), options);
        }
        catch (NotSupportedException ex)
        {
            throw new UserFacingException($"{path}: {ex.Message}");
        }
    }

    public static void Apply(EmotionModel model, InferenceEngine engine)
    {
        if (engine is not (InferenceEngine.TorchSharp or InferenceEngine.TorchSharpBFloat16))
        {
            throw new UserFacingException($"--engine: {engine} scores photos with --detect only; face crops are scored on libtorch (TorchSharp or TorchSharpBFloat16), which gives the same probabilities within 1e-4");
        }
        try
        {
            model.Engine = engine;
        }
        catch (NotSupportedException ex)
        {
            throw new UserFacingException($"--engine: {ex.Message}");
        }
    }

    /// <summary>Which engine runs the model, for a command's output.</summary>
    public static string Describe(IFaceClassifier model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var engine = model.Engine;
        if (engine == InferenceEngine.TorchSharpBFloat16 && PassCopy.CpuHasNativeBFloat16() == false)
        {
            return $"engine {engine} (--engine; this CPU has no native bfloat16 arithmetic, so libtorch emulates it: slower than TorchSharp)";
        }
        return model is OnnxFaceClassifier { IsInt8: true } ? $"engine {engine}, int8 network (--precision)" : $"engine {engine}";
    }
}
