using System.CommandLine;

using FerSharp.Models;
using FerSharp.Training;

namespace FerSharp.Cli.Commands;

/// <summary><c>--engine</c>: what runs the network, for the commands that predict.</summary>
internal static class EngineOption
{
    public static Option<InferenceEngine> Create() => new("--engine")
    {
        Description = "What runs the network: Auto (the faster of OpenCV's DNN module and TorchSharp on this machine, timed on one face at load; TorchSharp for a network that does not export to ONNX), OpenCv, TorchSharp, or TorchSharpBFloat16 (a bfloat16 copy: faster for the larger networks on CPUs with AVX-512 BF16 or AMX, slower elsewhere; a few answers in a thousand may differ from float32).",
        DefaultValueFactory = _ => InferenceEngine.Auto,
    };

    public static void Apply(EmotionModel model, InferenceEngine engine)
    {
        try
        {
            model.Engine = engine;
        }
        catch (NotSupportedException ex)
        {
            throw new UserFacingException($"{model.Path ?? model.Metadata.Name}: {ex.Message}");
        }
    }

    /// <summary>Which engine runs the model and why, for a command's output.</summary>
    public static string Describe(EmotionModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var engine = model.ActiveEngine;
        if (engine == InferenceEngine.TorchSharpBFloat16 && PassCopy.CpuHasNativeBFloat16() == false)
        {
            return $"engine {engine} (--engine; this CPU has no native bfloat16 arithmetic, so libtorch emulates it: slower than TorchSharp)";
        }
        return model.EngineTiming is { } timing
            ? $"engine {engine}, the faster here: {timing}"
            : $"engine {engine}{(model.Engine == InferenceEngine.Auto ? " (the network does not export to ONNX)" : " (--engine)")}";
    }
}
