using System.CommandLine;
using System.Globalization;
using System.Text.Json;

using FerSharp.Training;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer runs</c>: where the training runs stand, including the ones training in the background now.</summary>
internal static class RunsCommand
{
    public static Command Create()
    {
        var runsDir = new Option<string>("--runs-dir") { Description = "The folder of run folders.", DefaultValueFactory = _ => "runs" };
        var json = new Option<bool>("--json") { Description = "Print the runs as JSON." };
        var command = new Command("runs", "List training runs: training now (and by which process), stopped or finished; epochs, best validation accuracy, time, what is left, and how to continue a stopped one.")
        {
            runsDir, json,
        };
        command.SetAction((parse, ct) =>
        {
            var folder = parse.GetValue(runsDir)!;
            var problems = new List<string>();
            if (File.Exists(folder)) throw new UserFacingException($"--runs-dir: {folder} is a file; expected the folder of run folders");
            // A fresh clone has no runs folder until the first 'fer train': that is "no runs", not an error.
            var runs = Directory.Exists(folder) ? RunCatalog.List(folder, problems) : [];
            foreach (var problem in problems)
            {
                Console.Error.WriteLine($"fer runs: skipped: {problem}");
            }
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(runs.Select(r => ToJson(r, folder)), CliJson.Indented));
                return Task.FromResult(CliRunner.ExitOk);
            }
            if (runs.Count == 0)
            {
                AnsiConsole.MarkupLineInterpolated($"no runs in {folder}{(Directory.Exists(folder) ? "" : " (no such folder yet)")}; start one with 'fer train'");
                return Task.FromResult(CliRunner.ExitOk);
            }
            var table = new Table().Border(TableBorder.Rounded);
            foreach (var column in new[] { "run", "state", "stage", "architecture", "epochs", "package: val acc @ epoch", "last epoch: loss, acc, time", "trained", "left" })
            {
                table.AddColumn(column);
            }
            foreach (var r in runs)
            {
                table.AddRow(
                    Markup.Escape(r.Name),
                    r.State switch
                    {
                        RunState.Training => $"[green]training[/], pid {r.ProcessId}",
                        RunState.Stopped => "[yellow]stopped[/]",
                        _ => "finished",
                    },
                    r.Stage is { } stage ? $"{stage}/{r.Stages?.ToString(CultureInfo.InvariantCulture) ?? "?"}" : "",
                    Markup.Escape(r.Options.Architecture + (r.Options.Precision == TrainingPrecision.BFloat16 ? " bf16" : "") + (r.Options.MemoryFormat == TrainingMemoryFormat.ChannelsLast ? " nhwc" : "")),
                    $"{r.EpochsDone}/{r.Options.Epochs}" + (r.BatchesIntoNextEpoch > 0 ? $" (+{r.BatchesIntoNextEpoch} batches)" : ""),
                    r.Best is { } best ? $"{best.ValAccuracy:P2} @ {best.Epoch}" + (r.Options.TrainOnValidation ? " (trained on)" : "") : "",
                    r.Last is { } last ? $"{last.TrainLoss:F3}, {last.TrainAccuracy:P1}, {last.Seconds:F0} s" : "",
                    TrainingProgressView.Duration(r.Seconds),
                    Markup.Escape(Left(r)));
            }
            AnsiConsole.Write(table);
            foreach (var r in runs.Where(r => r.State == RunState.Stopped))
            {
                AnsiConsole.MarkupLineInterpolated($"[grey]continue {r.Name}: {ResumeCommand(r, folder)}[/]");
            }
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    /// <summary>The rest of the run at the median pace of its last five epochs, and what later stages add.</summary>
    private static string Left(RunStatus r)
    {
        if (r.State == RunState.Finished) return "";
        var epochs = Math.Max(0, r.Options.Epochs - r.EpochsDone);
        var parts = new List<string>();
        if (epochs > 0) parts.Add($"{epochs} epochs" + (MedianEpochSeconds(r) is { } pace ? $" ~{TrainingProgressView.Duration(pace * epochs)}" : ""));
        if (r.LaterStageEpochs is > 0 and var later) parts.Add($"+{later} later");
        return string.Join(", ", parts);
    }

    private static double? MedianEpochSeconds(RunStatus r)
    {
        var seconds = r.RecentEpochSeconds;
        if (seconds.Count == 0) return null;
        var sorted = seconds.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static string ResumeCommand(RunStatus r, string runsDir)
    {
        var passes = TrainCommand.PassArguments(r.Options);
        return r.Preset is { } preset
            ? $"fer train --preset {preset} {passes}--name {r.Name} --runs-dir {runsDir} --resume"
            : r.Stage is not null
                ? $"fer train --preset <its preset> {passes}--name {r.Name} --runs-dir {runsDir} --resume"
                : $"fer train --name {r.Name} --runs-dir {runsDir} --resume (with the options it was started with)";
    }

    private static object ToJson(RunStatus r, string runsDir) => new
    {
        name = r.Name,
        directory = r.Directory,
        state = r.State.ToString(),
        process_id = r.ProcessId,
        preset = r.Preset,
        stage = r.Stage,
        stages = r.Stages,
        architecture = r.Options.Architecture,
        precision = r.Options.Precision.ToString(),
        memory_format = r.Options.MemoryFormat.ToString(),
        epochs_done = r.EpochsDone,
        epochs = r.Options.Epochs,
        batches_into_next_epoch = r.BatchesIntoNextEpoch,
        package_epoch = r.Best?.Epoch,
        package_val_accuracy = r.Best?.ValAccuracy,
        validation_trained_on = r.Options.TrainOnValidation,
        last_epoch = r.Last is { } last
            ? new
            {
                epoch = last.Epoch,
                train_loss = last.TrainLoss,
                train_accuracy = last.TrainAccuracy,
                val_loss = last.ValLoss,
                val_accuracy = last.ValAccuracy,
                learning_rate = last.LearningRate,
                seconds = last.Seconds,
            }
            : null,
        training_seconds = Math.Round(r.Seconds, 1),
        later_stage_epochs = r.LaterStageEpochs,
        last_write_utc = r.LastWriteUtc,
        resume = r.State == RunState.Stopped ? ResumeCommand(r, runsDir) : null,
    };
}
