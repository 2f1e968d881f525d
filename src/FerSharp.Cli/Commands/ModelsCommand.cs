using System.CommandLine;
using FerSharp.Models;
using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer models</c>: the architectures with their size and cost, and <c>--layers</c> to show each layer.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var layers = new Option<bool>("--layers") { Description = "Also list every layer with its output shape and parameters." };
        var classes = new Option<int>("--classes") { Description = "Number of output classes.", DefaultValueFactory = _ => 7 };
        var command = new Command("models", "List the architectures: parameters, FLOPs per 48x48 image, description.") { layers, classes };
        command.SetAction(parse =>
        {
            var table = new Table().Border(TableBorder.Rounded);
            table.AddColumn("architecture");
            table.AddColumn(new TableColumn("parameters").RightAligned());
            table.AddColumn(new TableColumn("MFLOPs / image").RightAligned());
            table.AddColumn("design");
            var details = new List<(string, ModelProfile)>();
            foreach (var arch in ModelRegistry.All)
            {
                using var module = arch.Create(parse.GetValue(classes));
                var profile = ModelProfiler.Profile(module);
                table.AddRow(arch.Name, $"{profile.Parameters:N0}", $"{profile.Flops / 1e6:N1}", Markup.Escape(arch.Summary));
                details.Add((arch.Name, profile));
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine("[grey]FLOPs count a multiply-add as 2 (convolutions and linear layers, forward pass).[/]");
            if (parse.GetValue(layers))
            {
                foreach (var (name, profile) in details)
                {
                    var t = new Table().Border(TableBorder.Simple).Title(name);
                    t.AddColumn("layer");
                    t.AddColumn("type");
                    t.AddColumn("output");
                    t.AddColumn(new TableColumn("params").RightAligned());
                    foreach (var layer in profile.Layers)
                    {
                        t.AddRow(layer.Name, layer.Type, string.Join("x", layer.OutputShape), $"{layer.Parameters:N0}");
                    }
                    AnsiConsole.Write(t);
                }
            }
            return CliRunner.ExitOk;
        });
        return command;
    }
}
