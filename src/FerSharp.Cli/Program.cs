using System.CommandLine;

using FerSharp;
using FerSharp.Cli;
using FerSharp.Cli.Commands;

// Native libraries' own chatter is not the command's output: libtorch's warnings (e.g. "Could not initialize
// NNPACK" on CPUs it does not support) and OpenCV's [WARN] lines before a clean error. Errors still show;
// TORCH_CPP_LOG_LEVEL or OPENCV_LOG_LEVEL set by the user win.
NativeEnvironment.SetDefault("TORCH_CPP_LOG_LEVEL", "ERROR");
NativeEnvironment.SetDefault("OPENCV_LOG_LEVEL", "ERROR");
if (Environment.GetEnvironmentVariable("OPENCV_LOG_LEVEL") == "ERROR") OpenCvSharp.Cv2.SetLogLevel(OpenCvSharp.LogLevel.ERROR);

var root = new RootCommand("fer — facial expression recognition: train, evaluate and run CNNs on FER2013 / FER+.")
{
    DataCommands.Create(),
    TrainCommand.Create(),
    RunsCommand.Create(),
    ModelsCommand.Create(),
    EvaluateCommand.Create(),
    EvaluateCommand.Compare(),
    PredictCommand.Create(),
    PredictCommand.Video(),
    ServeCommand.Create(),
    InfoCommand.Create(),
};
return CliRunner.Run(root, args);
