using System.CommandLine;
using System.Globalization;

using FerSharp.Data;
using FerSharp.Models;
using FerSharp.Training;

using Spectre.Console;

namespace FerSharp.Cli.Commands;

/// <summary><c>fer train</c>: train an architecture on FER2013 / FER+ and write a run folder.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var data = new Option<string?>("--data", "-d") { Description = "fer2013.csv(.gz), image folder or tar(.gz). Default: ../shared/data/fer2013/fer2013.csv.gz or $FERSHARP_DATA." };
        var preset = new Option<string?>("--preset") { Description = "A named recipe: " + string.Join("; ", TrainPresets.List.Select(p => $"{p.Name} = {p.Description}")) + ". A preset of several stages runs them all in <run>/stage1, stage2, …, each from the previous one's best package; explicit recipe options (--epochs, --lr, …) override the first stage and make it a single run." };
        var arch = new Option<string>("--arch", "-a") { Description = "Architecture (see 'fer models').", DefaultValueFactory = _ => "seed-cnn" };
        var epochs = new Option<int>("--epochs", "-e") { Description = "Maximum epochs.", DefaultValueFactory = _ => 40 };
        var batch = new Option<int>("--batch-size", "-b") { Description = "Batch size.", DefaultValueFactory = _ => 64 };
        var optimizer = new Option<OptimizerKind>("--optimizer") { Description = "Adam, AdamW or Sgd.", DefaultValueFactory = _ => OptimizerKind.Adam };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 1e-3 };
        var wd = new Option<double>("--weight-decay") { Description = "Weight decay (L2 for Adam/SGD, decoupled for AdamW).", DefaultValueFactory = _ => 0 };
        var momentum = new Option<double>("--momentum") { Description = "SGD momentum.", DefaultValueFactory = _ => 0.9 };
        var noNesterov = new Option<bool>("--no-nesterov") { Description = "Plain momentum instead of Nesterov for SGD." };
        var schedule = new Option<LrScheduleKind>("--schedule") { Description = "None, Plateau (halve after --plateau-patience bad epochs) or Cosine.", DefaultValueFactory = _ => LrScheduleKind.Plateau };
        var warmup = new Option<double>("--warmup") { Description = "Linear warm-up epochs.", DefaultValueFactory = _ => 0 };
        var restartAt = new Option<string?>("--restart-at") { Description = "Cosine only: warm restarts, epochs where a new cosine cycle starts (e.g. 40 or 40,80; none = one cycle); a finished run can be extended this way with --resume." };
        var restartFactor = new Option<double>("--restart-lr-factor") { Description = "Peak rate of each restarted cycle relative to the previous one.", DefaultValueFactory = _ => 1 };
        var plateauPatience = new Option<int>("--plateau-patience") { Description = "Epochs without improvement before the plateau schedule lowers the rate.", DefaultValueFactory = _ => 3 };
        var smoothing = new Option<double>("--label-smoothing") { Description = "Label smoothing (0..1).", DefaultValueFactory = _ => 0 };
        var logitAdjust = new Option<double>("--logit-adjust") { Description = "Logit adjustment for rare classes (0..2): the loss sees the logits plus this times the log of each class's share of the training faces, so the network learns to predict rare classes (disgust) more often; 1 balances them fully, at some cost in accuracy. 0 = off.", DefaultValueFactory = _ => 0 };
        var augment = new Option<string>("--augment") { Description = "Augmentation, e.g. rotate=15,zoom=0.1,shift=0.1,flip,erase=0.5,mixup=0.2,cutmix=1 or none.", DefaultValueFactory = _ => AugmentOptions.Seed.ToString() };
        var monitor = new Option<string>("--monitor") { Description = "val_accuracy or val_loss: drives best checkpoint, early stopping, plateau.", DefaultValueFactory = _ => "val_accuracy" };
        var patience = new Option<int>("--patience") { Description = "Early stopping patience in epochs (0 = off).", DefaultValueFactory = _ => 8 };
        var standardize = new Option<bool>("--standardize") { Description = "Standardize inputs with the training set's mean/std (else just scale to [0,1])." };
        var perFace = new Option<string>("--per-face") { Description = "Per-face input normalization, stored in the package and applied by every engine: standardize (each face to mean 0, std 1, so brightness and contrast do not matter) or none. Default: none, or the --init-from package's own." };
        perFace.AcceptOnlyFromAmong([.. Normalization.KnownPerFace]);
        var ema = new Option<double>("--ema") { Description = "Exponential moving average of weights, decay per step (e.g. 0.999); 0 = off.", DefaultValueFactory = _ => 0 };
        var seed = new Option<long>("--seed") { Description = "Random seed (data order, augmentation, dropout, init).", DefaultValueFactory = _ => 42 };
        var precision = new Option<TrainingPrecision>("--precision")
        {
            Description = "Arithmetic of the training passes: Float32, or BFloat16 on a copy of the network (the weights stay float32): about 1.8x faster for vgg-wide on CPUs with AVX-512 BF16, likely slower where it is emulated. Applies to every stage of a preset.",
            DefaultValueFactory = _ => TrainingPrecision.Float32,
        };
        var memoryFormat = new Option<TrainingMemoryFormat>("--memory-format")
        {
            Description = "Memory layout of the training passes: Contiguous (NCHW), or ChannelsLast (NHWC) on a copy of the network (the weights stay NCHW): 1.1-1.2x faster for the VGG networks and fast-cnn, 1.6-1.9x for mini-xception on the AVX-512 host measured. Changes float rounding, so runs differ from Contiguous ones after the first steps. Applies to every stage of a preset.",
            DefaultValueFactory = _ => TrainingMemoryFormat.Contiguous,
        };
        var threads = new Option<int>("--threads") { Description = "CPU threads for libtorch (default: all cores).", DefaultValueFactory = _ => Environment.ProcessorCount };
        var limit = new Option<int>("--limit") { Description = "Use only the first N training faces (and N/4 validation faces) for a quick run.", DefaultValueFactory = _ => 0 };
        var valSplit = new Option<string>("--val-split") { Description = "Validation split.", DefaultValueFactory = _ => "PublicTest" };
        var valFraction = new Option<double>("--val-fraction") { Description = "Instead of --val-split, hold out this fraction of Training.", DefaultValueFactory = _ => 0 };
        var name = new Option<string?>("--name", "-n") { Description = "Run name (folder under --runs-dir). Default: <arch>-<timestamp>." };
        var runsDir = new Option<string>("--runs-dir") { Description = "Where run folders go.", DefaultValueFactory = _ => "runs" };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --name from its last checkpoint (mid-epoch if it was stopped within an epoch)." };
        var teacherCache = new Option<string?>("--teacher-cache") { Description = "With --distill-offline: also keep the teachers' targets in this folder, named by the teachers' weights and the training faces, so a later run with the same teachers and faces reads them instead of computing them again (7 minutes for models/fer2013-best on 2 cores)." };
        var checkpointMinutes = new Option<double>("--checkpoint-minutes") { Description = "Also checkpoint within an epoch every this many minutes (0 = only at epoch ends and on Ctrl+C), so a killed run loses at most that much.", DefaultValueFactory = _ => Trainer.DefaultPartialCheckpointInterval.TotalMinutes };
        var initFrom = new Option<string?>("--init-from") { Description = "Start from the weights of a model package (same --arch and classes) instead of random ones: continue training a shipped model, or fine-tune it on other data. The package's input normalization is kept." };
        var narrow = new Option<bool>("--narrow") { Description = "With --init-from a wider package of the same layout (e.g. vgg-wide's models/fer2013-best for -a vgg-bn): start from it narrowed, each convolution keeping its channels of largest batch-norm scale (as 'fer models prune'); distill from it too (--teacher) to recover what was cut." };
        var teacher = new Option<string?>("--teacher") { Description = "Knowledge distillation: also learn the softened predictions of this model package (any architecture, same classes) on each augmented batch, e.g. a small network from models/fer2013-best; several packages separated by commas teach as an ensemble (their probabilities averaged)." };
        var distillOffline = new Option<bool>("--distill-offline") { Description = "With --teacher: compute the teachers' predictions once, on the unaugmented training faces (with each package's flip averaging), instead of on every augmented batch; an ensemble of large teachers then costs minutes, not a doubled epoch." };
        var distillWeight = new Option<double>("--distill-weight") { Description = "With --teacher: share of the loss given to the teacher's predictions (0..1).", DefaultValueFactory = _ => 0.5 };
        var distillTemperature = new Option<double>("--distill-temperature") { Description = "With --teacher: softmax temperature of the distillation term.", DefaultValueFactory = _ => 4 };
        var trainOnValidation = new Option<bool>("--train-on-validation") { Description = "A final fit: the validation faces (--val-split) join the training data; the package is then the last epoch's, and validation accuracy is no longer held out. Needs a cosine (or no) schedule and --patience 0." };
        var dataOptions = new DatasetOptions();
        Option[] recipeOptions =
        [
            arch, epochs, batch, optimizer, lr, wd, momentum, noNesterov, schedule, warmup, restartAt, restartFactor, plateauPatience, smoothing, logitAdjust,
            augment, monitor, patience, standardize, perFace, ema, seed, initFrom, narrow, teacher, distillOffline, distillWeight, distillTemperature,
            trainOnValidation,
        ];

        var command = new Command("train", "Train a CNN on FER2013 (or FER+) with augmentation, early stopping and checkpoints.")
        {
            data, preset, arch, epochs, batch, optimizer, lr, wd, momentum, noNesterov, schedule, warmup, restartAt, restartFactor, plateauPatience, smoothing, logitAdjust,
            augment, monitor, patience, standardize, perFace, ema, seed, precision, memoryFormat, threads, limit, valSplit, valFraction, name, runsDir, resume, checkpointMinutes, teacherCache,
            initFrom, narrow, teacher, distillOffline, distillWeight, distillTemperature, trainOnValidation,
        };
        command.Options.Add(dataOptions.SkipBadRows);
        command.Options.Add(dataOptions.FerPlus);
        command.Options.Add(dataOptions.FerPlusMode);

        command.SetAction((parse, ct) =>
        {
            var recipe = parse.GetValue(preset) is { } presetName ? TrainPresets.Get(presetName) : null;
            var baseOptions = recipe?.First ?? new TrainOptions();
            T Pick<T>(Option<T> option, T fromPreset) => parse.GetResult(option) is { Implicit: false } ? parse.GetValue(option)! : fromPreset;
            var options = baseOptions with
            {
                Architecture = Pick(arch, parse.GetValue(preset) != null ? baseOptions.Architecture : parse.GetValue(arch)!),
                Epochs = Pick(epochs, parse.GetValue(preset) != null ? baseOptions.Epochs : parse.GetValue(epochs)),
                BatchSize = Pick(batch, baseOptions.BatchSize),
                Optimizer = Pick(optimizer, baseOptions.Optimizer),
                LearningRate = Pick(lr, baseOptions.LearningRate),
                WeightDecay = Pick(wd, baseOptions.WeightDecay),
                Momentum = Pick(momentum, baseOptions.Momentum),
                Nesterov = parse.GetValue(noNesterov) ? false : baseOptions.Nesterov,
                Schedule = Pick(schedule, baseOptions.Schedule),
                WarmupEpochs = Pick(warmup, baseOptions.WarmupEpochs),
                RestartAt = Pick(restartAt, baseOptions.RestartAt),
                RestartLrFactor = Pick(restartFactor, baseOptions.RestartLrFactor),
                PlateauPatience = Pick(plateauPatience, baseOptions.PlateauPatience),
                LabelSmoothing = Pick(smoothing, baseOptions.LabelSmoothing),
                LogitAdjustment = Pick(logitAdjust, baseOptions.LogitAdjustment),
                Augment = Pick(augment, baseOptions.Augment),
                Monitor = Pick(monitor, baseOptions.Monitor),
                EarlyStoppingPatience = Pick(patience, baseOptions.EarlyStoppingPatience),
                Standardize = parse.GetValue(standardize) || baseOptions.Standardize,
                PerFace = parse.GetValue(perFace) ?? baseOptions.PerFace,
                Ema = Pick(ema, baseOptions.Ema),
                Seed = Pick(seed, baseOptions.Seed),
                InitFrom = parse.GetValue(initFrom) ?? baseOptions.InitFrom,
                Narrow = parse.GetValue(narrow) || baseOptions.Narrow,
                Teacher = parse.GetValue(teacher) ?? baseOptions.Teacher,
                DistillOffline = parse.GetValue(distillOffline) || baseOptions.DistillOffline,
                DistillWeight = Pick(distillWeight, baseOptions.DistillWeight),
                DistillTemperature = Pick(distillTemperature, baseOptions.DistillTemperature),
                TrainOnValidation = parse.GetValue(trainOnValidation) || baseOptions.TrainOnValidation,
                Precision = Pick(precision, baseOptions.Precision),
                MemoryFormat = Pick(memoryFormat, baseOptions.MemoryFormat),
            };
            options = options with { Augment = AugmentOptions.Parse(options.Augment).ToString() };
            options.Validate();
            // A preset's later stages continue its earlier ones; with explicit recipe options the command is a
            // different recipe, so it is one run from the first stage, as it was before presets had stages.
            var explicitRecipe = recipeOptions.Any(o => parse.GetResult(o) is { Implicit: false });
            var stages = recipe is { Stages.Count: > 1 } && !explicitRecipe ? recipe.Stages.Select(s => s with { Precision = options.Precision, MemoryFormat = options.MemoryFormat }).ToList() : null;
            if (recipe is { Stages.Count: > 1 } && explicitRecipe)
            {
                AnsiConsole.MarkupLineInterpolated($"[grey]explicit training options: one run from stage 1 of preset {recipe.Name} (its {recipe.Stages.Count} stages run when only --preset sets the recipe)[/]");
            }
            var threadCount = OptionRules.AtLeast(parse, threads, 1, "threads");
            var faceLimit = OptionRules.AtLeast(parse, limit, 0, "faces (0 = all)");
            var minutes = OptionRules.Within(parse, checkpointMinutes, 0, double.MaxValue, "0 or more minutes");
            var givenName = OptionRules.FolderName(parse, name);
            var targetsCache = OptionRules.FolderToWrite(parse.GetValue(teacherCache), "--teacher-cache");
            OptionRules.FolderToWrite(parse.GetValue(runsDir), "--runs-dir");
            TorchSharp.torch.set_num_threads(threadCount);
            if (options.InitFrom is { } initPath && !parse.GetValue(resume))
            {
                // Fail on a missing or mismatched package now, not after the minute of loading data.
                using var initial = Trainer.LoadInitialPackage(initPath, options.Architecture, options.Narrow);
                if (initial.Metadata.TrainOptions()?.Seed == options.Seed)
                {
                    // The seed fixes each epoch's order, augmentation and dropout masks, so epoch k of this run
                    // shows the network exactly the batches of the package's own epoch k.
                    AnsiConsole.MarkupLineInterpolated($"[yellow]note: {initPath} was trained with the same --seed {options.Seed}; this run repeats its data order, augmentation and dropout epoch by epoch. Pass another --seed for fresh draws.[/]");
                }
            }
            // A stage taught by earlier stages (@stageN) finds their packages only when the chain reaches it.
            foreach (var teacherPath in (stages ?? [options]).SelectMany(o => o.TeacherPaths).Where(p => !TrainingChain.IsStageTeacher(p)).Distinct())
            {
                EmotionModel.Load(teacherPath).Dispose();
            }

            var runName = givenName ?? $"{options.Architecture}-{DateTime.Now:yyyyMMdd-HHmmss}";
            var runDir = Path.Combine(parse.GetValue(runsDir)!, runName);
            RunLock.ThrowIfHeld(runDir); // now, not after the minute of loading data

            var dataPath = parse.GetValue(data) ?? Fer2013Dataset.FindSharedData()
                ?? throw new UserFacingException(EvaluateCommand.NoDataMessage());
            AnsiConsole.MarkupLineInterpolated($"[grey]loading {dataPath}…[/]");
            var all = Fer2013Dataset.Load(dataPath, new DatasetLoadOptions
            {
                SkipBadRows = parse.GetValue(dataOptions.SkipBadRows),
                FerPlusLabels = parse.GetValue(dataOptions.FerPlus),
                FerPlusMode = parse.GetValue(dataOptions.FerPlusMode),
            }, ct);
            DataCommands.PrintReport(all.Report);
            var (train, validation) = SplitData(all, parse.GetValue(valSplit)!, parse.GetValue(valFraction), options.Seed);
            if (faceLimit is > 0 and var n)
            {
                train = train.Take(n);
                validation = validation.Take(Math.Max(32, n / 4));
            }
            if (train.Count < 2 || validation.Count < 1)
            {
                throw new UserFacingException($"not enough data: {train.Count} training and {validation.Count} validation faces");
            }

            TimeSpan? partialInterval = minutes > 0 ? TimeSpan.FromMinutes(minutes) : null;
            var presetHint = stages == null ? ""
                : $"--preset {recipe!.Name} " + PassArguments(options);
            var resumeHint = $"fer train {presetHint}--name {runName} --runs-dir {parse.GetValue(runsDir)} --resume{(stages != null ? "" : " (same options)")}";
            AnsiConsole.MarkupLineInterpolated($"training [bold]{options.Architecture}[/] on {train.Count:N0} faces, validating on {validation.Count:N0}{(options.TrainOnValidation ? " (which join the training data)" : "")}; run folder [bold]{runDir}[/]");
            TrainingResult result;
            string curvesPath;
            if (stages != null)
            {
                var chain = new TrainingChain(stages, runDir) { PartialCheckpointInterval = partialInterval, Preset = recipe!.Name, TeacherTargetsCacheDirectory = targetsCache };
                var results = chain.Fit(train, validation, parse.GetValue(resume), (stage, trainer, resumeStage) =>
                {
                    var o = chain.StageOptions(stage);
                    AnsiConsole.MarkupLineInterpolated($"[bold]stage {stage + 1}/{chain.StageCount}[/] of preset {recipe!.Name}: {o.Epochs} epochs, peak lr {o.LearningRate.ToString(CultureInfo.InvariantCulture)}{(o.InitFrom is { } from ? $", from {from}" : "")}; {trainer.RunDirectory}");
                    return TrainingProgressView.Run(trainer, train, validation, resumeStage, ct, chain.LaterStagesInEpochsOf(stage, train.Count, validation.Count));
                }, ct);
                result = results[^1];
                curvesPath = chain.StageTrainer(results.Count - 1).CurvesPath;
                if (results.Count < chain.StageCount && !result.Cancelled)
                {
                    throw new UserFacingException($"stage {results.Count} of preset {recipe!.Name} trained no epoch; the chain stops there");
                }
            }
            else
            {
                var trainer = new Trainer(options, runDir) { PartialCheckpointInterval = partialInterval, TeacherTargetsCacheDirectory = targetsCache };
                AnsiConsole.MarkupLineInterpolated($"[grey]{options.Optimizer} lr={options.LearningRate.ToString(CultureInfo.InvariantCulture)} batch={options.BatchSize} schedule={options.Schedule} augment={options.Augment} precision={options.Precision} memory-format={options.MemoryFormat} threads={TorchSharp.torch.get_num_threads()}[/]");
                result = TrainingProgressView.Run(trainer, train, validation, parse.GetValue(resume), ct);
                curvesPath = trainer.CurvesPath;
            }

            if (result.History.Count == 0 && result.SavedMidEpoch)
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]interrupted in the first epoch; continue with: {resumeHint}[/]");
                return Task.FromResult(CliRunner.ExitCancelled);
            }
            if (result.History.Count == 0)
            {
                AnsiConsole.MarkupLine("[yellow]stopped before the first epoch completed; nothing saved[/]");
                return Task.FromResult(CliRunner.ExitCancelled);
            }
            var best = result.History.First(h => h.Epoch == result.BestEpoch);
            AnsiConsole.MarkupLineInterpolated($"best epoch {best.Epoch}: val_accuracy [bold]{best.ValAccuracy:P2}[/], val_loss {best.ValLoss:F4}; {result.History.Count} epochs in {TimeSpan.FromSeconds(result.ElapsedSeconds):hh\\:mm\\:ss}");
            AnsiConsole.MarkupLineInterpolated($"model package: [bold]{result.ModelPath}[/]   curves: {curvesPath}");
            if (result.Cancelled)
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]interrupted; continue with: {resumeHint}[/]");
                return Task.FromResult(CliRunner.ExitCancelled);
            }
            return Task.FromResult(CliRunner.ExitOk);
        });
        return command;
    }

    private static (FaceDataset Train, FaceDataset Validation) SplitData(FaceDataset all, string valSplit, double valFraction, long seed)
    {
        var training = all.Subset(DataSplit.Training);
        if (valFraction > 0)
        {
            if (valFraction >= 1) throw new UserFacingException("--val-fraction must be below 1");
            var rng = new Random(unchecked((int)seed));
            var order = Enumerable.Range(0, training.Count).OrderBy(_ => rng.Next()).ToArray();
            var holdOut = (int)Math.Round(training.Count * valFraction);
            return (training.Select(order[holdOut..].Order().ToArray()), training.Select(order[..holdOut].Order().ToArray()));
        }
        var split = DataSplits.Parse(valSplit);
        if (split == DataSplit.Training) throw new UserFacingException("--val-split cannot be Training");
        return (training, all.Subset(split));
    }

    /// <summary>The --precision and --memory-format arguments that continue a preset's chain run as it was started ("" for the defaults).</summary>
    internal static string PassArguments(TrainOptions options) =>
        (options.Precision != TrainingPrecision.Float32 ? $"--precision {options.Precision} " : "")
        + (options.MemoryFormat != TrainingMemoryFormat.Contiguous ? $"--memory-format {options.MemoryFormat} " : "");
}
