using System.CommandLine;

using FerSharp.Models;

namespace FerSharp.Cli.Commands;

/// <summary><c>--engine</c>: what runs the network, for the commands that predict.</summary>
internal static class EngineOption
{
    public static Option<InferenceEngine> Create() => new("--engine")
    {
        Description = "What runs the network: Auto (the faster of OpenCV's DNN module and TorchSharp on this machine, timed on one face at load; TorchSharp for a network that does not export to ONNX), OpenCv or TorchSharp.",
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
        return model.EngineTiming is { } timing
            ? $"engine {engine}, the faster here: {timing}"
            : $"engine {engine}{(model.Engine == InferenceEngine.Auto ? " (the network does not export to ONNX)" : " (--engine)")}";
    }
}
