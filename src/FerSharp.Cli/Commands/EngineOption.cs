using System.CommandLine;

using FerSharp.Models;

namespace FerSharp.Cli.Commands;

/// <summary><c>--engine</c>: what runs the network, for the commands that predict.</summary>
internal static class EngineOption
{
    public static Option<InferenceEngine> Create() => new("--engine")
    {
        Description = "What runs the network: Auto (OpenCV's DNN module when the network exports to ONNX, as every registered architecture does; else TorchSharp), OpenCv or TorchSharp.",
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
}
