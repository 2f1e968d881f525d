using FerSharp.Data;
using FerSharp.Training;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary>Shows training as a live progress bar per epoch, or as plain lines when output is not a terminal.</summary>
internal static class TrainingProgressView
{
    /// <param name="laterEpochs">
    /// For a preset's stage: the later stages' epochs in epochs of this one (<see cref="TrainingChain.LaterStagesInEpochsOf"/>),
    /// so each epoch's line also estimates the whole rest of the preset.
    /// </param>
    public static TrainingResult Run(Trainer trainer, FaceDataset train, FaceDataset validation, bool resume, CancellationToken ct, double laterEpochs = 0)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive)
        {
            return trainer.Fit(train, validation, resume, new SyncProgress<TrainingProgress>(p => PrintPlain(p, laterEpochs)), ct);
        }
        TrainingResult? result = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                ProgressTask? task = null;
                result = trainer.Fit(train, validation, resume, new SyncProgress<TrainingProgress>(p =>
                {
                    switch (p.Phase)
                    {
                        case TrainingPhase.TeacherTargets:
                            task ??= ctx.AddTask("teacher targets", maxValue: p.TotalBatches);
                            task.Value = p.Batch;
                            task.Description = $"teacher targets  {p.Batch:N0}/{p.TotalBatches:N0} faces  {p.ImagesPerSecond:F0} faces/s";
                            if (p.Batch >= p.TotalBatches)
                            {
                                task.StopTask();
                                task = null;
                            }
                            break;
                        case TrainingPhase.EpochStarted:
                            task = ctx.AddTask($"epoch {p.Epoch}/{p.TotalEpochs}", maxValue: p.TotalBatches);
                            break;
                        case TrainingPhase.Batch when task != null:
                            task.Value = p.Batch;
                            task.Description = $"epoch {p.Epoch}/{p.TotalEpochs}  loss {p.RunningLoss:F3}  acc {p.RunningAccuracy:P1}  {p.ImagesPerSecond:F0} img/s";
                            break;
                        case TrainingPhase.Validating when task != null:
                            task.Description += "  [grey]validating…[/]";
                            break;
                        case TrainingPhase.EpochCompleted when task != null && p.Metrics is { } m:
                            task.Description = Summary(m, p.IsBest, p.TotalEpochs, laterEpochs);
                            task.StopTask();
                            break;
                    }
                }), ct);
            });
        return result!;
    }

    private static string Summary(EpochMetrics m, bool best, int totalEpochs, double laterEpochs) =>
        $"epoch {m.Epoch}  loss {m.TrainLoss:F3} acc {m.TrainAccuracy:P1} | val_loss {m.ValLoss:F3} [bold]val_acc {m.ValAccuracy:P2}[/] | lr {m.LearningRate:G2} | {m.Seconds:F0}s {m.ImagesPerSecond:F0} img/s{(best ? " [green]best[/]" : "")}{TimeLeft(m, totalEpochs, laterEpochs)}";

    /// <summary>
    /// How long the rest of the run takes at the last epoch's pace, so a log of a run in the background says
    /// when to come back (the bar's own estimate covers one epoch only). Early stopping may end it sooner.
    /// </summary>
    private static string TimeLeft(EpochMetrics m, int totalEpochs, double laterEpochs)
    {
        var epochsLeft = totalEpochs - m.Epoch;
        var parts = new List<string>(2);
        if (epochsLeft > 0) parts.Add($"{epochsLeft} more epoch{(epochsLeft == 1 ? "" : "s")}, ~{Duration(m.Seconds * epochsLeft)} at this pace");
        if (laterEpochs > 0) parts.Add($"the preset's later stages ~{Duration(m.Seconds * laterEpochs)} more");
        return parts.Count == 0 ? "" : " | " + string.Join("; ", parts);
    }

    internal static string Duration(double seconds)
    {
        var left = TimeSpan.FromSeconds(seconds);
        return left.TotalHours >= 1 ? $"{(int)left.TotalHours} h {left.Minutes} min"
            : left.TotalMinutes >= 1 ? $"{(int)left.TotalMinutes} min"
            : $"{Math.Max(1, (int)Math.Round(left.TotalSeconds))} s";
    }

    private static void PrintPlain(TrainingProgress p, double laterEpochs)
    {
        switch (p.Phase)
        {
            case TrainingPhase.TeacherTargets when p.Batch >= p.TotalBatches:
                Console.WriteLine($"  teacher targets: {p.Batch:N0}/{p.TotalBatches:N0} faces, {p.ImagesPerSecond:F0} faces/s");
                break;
            case TrainingPhase.Batch when p.TotalBatches >= 8 && p.Batch % (p.TotalBatches / 4) == 0 && p.Batch < p.TotalBatches:
                Console.WriteLine($"  epoch {p.Epoch} batch {p.Batch}/{p.TotalBatches}: loss {p.RunningLoss:F3} acc {p.RunningAccuracy:P1} {p.ImagesPerSecond:F0} img/s");
                break;
            case TrainingPhase.EpochCompleted when p.Metrics is { } m:
                AnsiConsole.MarkupLine(Summary(m, p.IsBest, p.TotalEpochs, laterEpochs));
                break;
        }
    }
}
