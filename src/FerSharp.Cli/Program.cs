using System.CommandLine;

using FerSharp.Cli;
using FerSharp.Cli.Commands;

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
