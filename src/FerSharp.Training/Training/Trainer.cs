using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;

using TorchSharp;
using TorchSharp.Modules;

using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// The outcome of <see cref="Trainer.Fit"/>. <paramref name="SavedMidEpoch"/>: the run was cancelled within an epoch
/// and wrote checkpoints/partial.ckpt, so <c>resume</c> continues from the batch it reached.
/// </summary>
public sealed record TrainingResult(
    IReadOnlyList<EpochMetrics> History,
    int BestEpoch,
    double BestMonitored,
    string ModelPath,
    bool StoppedEarly,
    bool Cancelled,
    double ElapsedSeconds,
    bool SavedMidEpoch = false);

/// <summary>
/// Trains one architecture on in-memory faces. A run lives in a folder (<c>runs/&lt;name&gt;</c>) holding
/// config.json, history.csv, curves.png, log.txt, checkpoints/{last,best}.ckpt and the best model package
/// in model/. Every epoch is seeded from (seed, epoch), so a resumed run repeats an uninterrupted one. Within an
/// epoch, checkpoints/partial.ckpt is written every <see cref="PartialCheckpointInterval"/> and when the run is
/// cancelled, so a stopped run resumes at the batch it reached, not at the start of the epoch.
/// </summary>
public sealed class Trainer
{
    private TrainOptions _options;
    private readonly string _runDirectory;

    public Trainer(TrainOptions options, string runDirectory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrEmpty(runDirectory);
        options.Validate();
        _options = options;
        _runDirectory = runDirectory;
    }

    public string RunDirectory => _runDirectory;
    public string LastCheckpointPath => LastCheckpointIn(_runDirectory);

    /// <summary>Where a run in <paramref name="runDirectory"/> keeps the checkpoint of its last completed epoch.</summary>
    public static string LastCheckpointIn(string runDirectory) => Path.Combine(runDirectory, "checkpoints", "last.ckpt");

    /// <summary>Whether <paramref name="runDirectory"/> holds a run that <c>resume</c> would continue (even one stopped in its first epoch).</summary>
    public static bool HasRunIn(string runDirectory) =>
        File.Exists(LastCheckpointIn(runDirectory)) || File.Exists(PartialCheckpointIn(runDirectory));

    private static string PartialCheckpointIn(string runDirectory) => Path.Combine(runDirectory, "checkpoints", "partial.ckpt");
    public string BestCheckpointPath => Path.Combine(_runDirectory, "checkpoints", "best.ckpt");
    public string PartialCheckpointPath => PartialCheckpointIn(_runDirectory);
    public string ModelPath => Path.Combine(_runDirectory, "model");
    public string HistoryPath => Path.Combine(_runDirectory, "history.csv");
    public string CurvesPath => Path.Combine(_runDirectory, "curves.png");
    public string LogPath => Path.Combine(_runDirectory, "log.txt");

    /// <summary>Skip writing curves.png each epoch (tests; the file is still written at the end).</summary>
    public bool DrawCurvesEachEpoch { get; init; } = true;

    /// <summary>
    /// How often a mid-epoch checkpoint is written (null: never; one is still written when the run is
    /// cancelled). An epoch of a large network takes about 20 minutes on two cores, and a run killed rather
    /// than cancelled would otherwise lose all of it.
    /// </summary>
    public TimeSpan? PartialCheckpointInterval { get; init; } = DefaultPartialCheckpointInterval;

    public static readonly TimeSpan DefaultPartialCheckpointInterval = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A folder that also keeps offline teacher targets (<see cref="TrainOptions.DistillOffline"/>) for later runs,
    /// each file named by what it was computed from (teachers' weights, training faces), so a new run with the same
    /// teachers and faces reads them instead of running the teachers again (minutes for a large one). Null: only
    /// the run's own checkpoints folder keeps them, for <c>--resume</c>.
    /// </summary>
    public string? TeacherTargetsCacheDirectory { get; init; }

    public TrainingResult Fit(
        FaceDataset train,
        FaceDataset validation,
        bool resume = false,
        IProgress<TrainingProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(validation);
        if (train.Count < 2) throw new ArgumentException("the training set needs at least 2 faces");
        if (validation.Count < 1) throw new ArgumentException("the validation set is empty");
        if (!train.ClassNames.SequenceEqual(validation.ClassNames))
        {
            throw new ArgumentException("training and validation data have different class sets");
        }
        Directory.CreateDirectory(Path.Combine(_runDirectory, "checkpoints"));
        using var runLock = RunLock.Acquire(_runDirectory);
        if (_options.TrainOnValidation)
        {
            train = train.Concat(validation);
        }

        var architecture = ModelRegistry.Get(_options.Architecture);
        using var model = architecture.Create(train.ClassCount);
        using (var initGenerator = new Generator().manual_seed(EpochSeed(0, 0)))
        {
            SeededLayers.ResetParameters(model, initGenerator); // weight initialisation is part of the run's reproducibility
        }
        using var ema = _options.Ema > 0 ? architecture.Create(train.ClassCount) : null;
        using var passCopy = PassCopy.IsNeeded(_options) ? new PassCopy(model, architecture.Create(train.ClassCount), _options.Precision, _options.MemoryFormat) : null;
        var optimizer = CreateOptimizer(model);

        var resumeFrom = resume ? CheckpointToResume() : null;
        var state = resumeFrom != null
            ? Resume(resumeFrom, model, ema, optimizer, train.ClassNames)
            : StartNewRun(resume, model, ema, train, validation.Count);
        if (!HeldScalars.RuntimeKeepsTemporariesAlive())
        {
            Log("warning: DOTNET_JITMinOpts=1 is not set; TorchSharp's optimizer and batch norm can then, rarely, fail in libtorch when a garbage collection frees a number mid-call (docs/decisions/0003-torchsharp-scalar-lifetime.md). ./fer sets it; set it for your own programs.");
        }
        if (_options.Precision == TrainingPrecision.BFloat16 && PassCopy.CpuHasNativeBFloat16() == false)
        {
            Log("warning: this CPU has no native bfloat16 arithmetic (no avx512_bf16 or amx_bf16 among its flags), so libtorch emulates it and --precision BFloat16 is likely slower than Float32 here.");
        }
        AtomicFile.WriteAllText(Path.Combine(_runDirectory, "config.json"), JsonSerializer.Serialize(_options, ModelMetadata.JsonOptions));

        using var trainData = new DataTensors(train);
        using var teacher = _options.Teacher is { } teacherOption ? LoadTeacher(teacherOption, trainData, state, progress, cancellationToken) : null;
        state = state with { TeacherWeightsSha256 = teacher?.WeightsSha256 };
        using var validationData = new DataTensors(validation);
        var batchSize = Math.Min(_options.BatchSize, train.Count);
        var fit = new FitContext
        {
            Model = model,
            Ema = ema,
            PassCopy = passCopy,
            Optimizer = optimizer,
            Teacher = teacher,
            Train = trainData,
            Validation = validationData,
            ClassNames = train.ClassNames,
            Augment = _options.AugmentOptions,
            BatchSize = batchSize,
            // A last batch of one sample breaks batch norm; drop a remainder smaller than 2.
            Batches = train.Count / batchSize + (train.Count % batchSize >= 2 ? 1 : 0),
            ElapsedBefore = state.ElapsedSeconds,
            Progress = progress,
        };
        var cancelled = false;
        var savedMidEpoch = false;
        var stoppedEarly = false;

        for (var epoch = state.Epoch + 1; epoch <= _options.Epochs; epoch++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                cancelled = true;
                break;
            }
            progress?.Report(new TrainingProgress(TrainingPhase.EpochStarted, epoch, _options.Epochs, 0, fit.Batches, 0, 0, 0));
            using var run = new EpochRun(train.Count, new EpochSeeds(EpochSeed(epoch, 1), EpochSeed(epoch, 2), EpochSeed(epoch, 3)), state.InProgress);
            state = state with { InProgress = null };
            using var dropoutBinding = SeededLayers.BindDropout(passCopy?.Network ?? model, run.Dropout);
            model.train();
            var (batchesDone, lr) = TrainBatches(fit, state, epoch, run, cancellationToken);
            if (batchesDone < fit.Batches)
            {
                cancelled = true;
                savedMidEpoch = batchesDone > 0;
                break;
            }
            state = CompleteEpoch(fit, state, epoch, run, lr);
            stoppedEarly = StopsEarly(state);
            if (stoppedEarly)
            {
                Log($"early stopping: no improvement in {_options.Monitor} for {_options.EarlyStoppingPatience} epochs; best epoch {state.BestEpoch}");
                break;
            }
        }
        if (cancelled)
        {
            if (!savedMidEpoch)
            {
                Log(state.Epoch > 0
                    ? $"cancelled during epoch {state.Epoch + 1}; checkpoint of epoch {state.Epoch} kept, continue with --resume"
                    : "cancelled before the first epoch completed");
            }
            progress?.Report(new TrainingProgress(TrainingPhase.Stopped, state.Epoch, _options.Epochs, 0, 0, 0, 0, 0, Message: "cancelled"));
        }
        if (state.History.Count > 0)
        {
            TrainingCurves.Save(state.History, CurvesPath, _options.Architecture, state.BestEpoch, _options.Teacher is not null);
        }
        return new TrainingResult(state.History, state.BestEpoch, state.BestMonitored, ModelPath, stoppedEarly, cancelled,
            fit.ElapsedSeconds, savedMidEpoch);
    }

    /// <summary>What one call of <see cref="Fit"/> trains with: the networks, the data as tensors, the batching, the clock.</summary>
    private sealed class FitContext
    {
        public required nn.Module<Tensor, Tensor> Model { get; init; }
        /// <summary>The weight average, validated and shipped instead of the model when present.</summary>
        public required nn.Module<Tensor, Tensor>? Ema { get; init; }
        /// <summary>With bfloat16 or channels-last passes: the copy that runs them for <see cref="Model"/>.</summary>
        public required PassCopy? PassCopy { get; init; }
        public required OptimizerHelper Optimizer { get; init; }
        public required DistillationTeacher? Teacher { get; init; }
        public required DataTensors Train { get; init; }
        public required DataTensors Validation { get; init; }
        public required IReadOnlyList<string> ClassNames { get; init; }
        public required AugmentOptions Augment { get; init; }
        public required int BatchSize { get; init; }
        public required int Batches { get; init; }
        /// <summary>Seconds the run had trained before this call (a resumed run).</summary>
        public required double ElapsedBefore { get; init; }
        public IProgress<TrainingProgress>? Progress { get; init; }
        private readonly Stopwatch _watch = Stopwatch.StartNew();

        public double ElapsedSeconds => ElapsedBefore + _watch.Elapsed.TotalSeconds;
        public nn.Module<Tensor, Tensor> Evaluated => Ema ?? Model;
    }

    /// <summary>A dataset as tensors: raw pixels (bytes), target distributions and labels.</summary>
    private sealed class DataTensors : IDisposable
    {
        public DataTensors(FaceDataset data)
        {
            Data = data;
            Pixels = data.ToTensor();
            Targets = TargetsOf(data);
            Labels = data.LabelsTensor();
            LogPrior = LogPriorOf(Targets);
        }

        public FaceDataset Data { get; }
        public Tensor Pixels { get; }
        public Tensor Targets { get; }
        public Tensor Labels { get; }
        public int Count => Data.Count;
        public int ClassCount => Data.ClassCount;
        public IReadOnlyList<string> ClassNames => Data.ClassNames;

        /// <summary>[1, classes]: the log of each class's share of the targets (made with them, to live as long).</summary>
        public Tensor LogPrior { get; }

        public void Dispose()
        {
            Pixels.Dispose();
            Targets.Dispose();
            Labels.Dispose();
            LogPrior.Dispose();
        }
    }

    private static Tensor LogPriorOf(Tensor targets)
    {
        using var share = targets.mean([0L]);
        using var floored = share.clamp_min(1e-8);
        using var log = floored.log();
        return log.unsqueeze(0);
    }

    /// <summary>Continues the run from <paramref name="checkpointPath"/>: weights, weight average and optimizer state.</summary>
    private TrainingState Resume(string checkpointPath, nn.Module<Tensor, Tensor> model, nn.Module<Tensor, Tensor>? ema,
        OptimizerHelper optimizer, IReadOnlyList<string> classNames)
    {
        var (saved, modelBytes, emaBytes, optimizerBytes) = Checkpoint.Load(checkpointPath);
        // The starting weights are in the checkpoint now; the run keeps the package it was started from.
        _options = _options with { InitFrom = saved.Options.InitFrom };
        CheckResumable(checkpointPath, saved.Options, saved.Epoch);
        if (!saved.ClassNames.SequenceEqual(classNames))
        {
            throw new ArgumentException($"{checkpointPath}: checkpoint classes ({string.Join(",", saved.ClassNames)}) differ from the data's");
        }
        LoadModule(model, modelBytes);
        if (ema != null) LoadModule(ema, emaBytes ?? modelBytes);
        using (var reader = new BinaryReader(new MemoryStream(optimizerBytes)))
        {
            optimizer.load_state_dict(reader);
        }
        Log(saved.InProgress is { } partial
            ? $"resumed from {checkpointPath} in epoch {saved.Epoch + 1} after batch {partial.Batches}"
            : $"resumed from {checkpointPath} after epoch {saved.Epoch}");
        return saved with { Options = _options, Stopped = false };
    }

    private TrainingState StartNewRun(bool resumeAsked, nn.Module<Tensor, Tensor> model, nn.Module<Tensor, Tensor>? ema,
        FaceDataset train, int validationCount)
    {
        if (!resumeAsked && HasRunIn(_runDirectory))
        {
            throw new IOException($"{_runDirectory} already holds a run; pass --resume to continue it or choose another --name");
        }
        // A new run starts a new log; only what this run does goes in it, from here on.
        File.Delete(LogPath);
        if (resumeAsked)
        {
            Log($"--resume: no checkpoint at {LastCheckpointPath}; starting a new run");
        }
        var normalization = _options.InitFrom is { } initFrom
            ? LoadInitialWeights(model, initFrom, train.ClassNames)
            : _options.PerFace == Normalization.PerFaceStandardize ? new Normalization()
            : _options.Standardize ? ComputeNormalization(train) : new Normalization();
        if (_options.PerFace is { } perFace && perFace != normalization.PerFace)
        {
            // Per-face standardized inputs already have mean 0 and std 1: a global step on top would only rescale.
            normalization = perFace == Normalization.PerFaceStandardize
                ? new Normalization { PerFace = perFace }
                : _options.Standardize ? ComputeNormalization(train) : new Normalization();
            Log($"input normalization: {normalization}");
        }
        ema?.load_state_dict(model.state_dict());
        Log($"new run: {_options.Architecture}, {train.Count} training / {validationCount} validation faces, {get_num_threads()} threads");
        if (_options.TrainOnValidation)
        {
            Log("the validation faces are part of the training data: validation accuracy is not held out, and the package is the last epoch's");
        }
        return new TrainingState
        {
            Options = _options,
            History = [],
            BestMonitored = double.NaN,
            Schedule = new LrScheduleState(),
            Normalization = normalization,
            ClassNames = train.ClassNames,
            Dataset = Fingerprint(train),
        };
    }

    /// <summary>
    /// Trains the epoch's batches from <see cref="EpochRun.FirstBatch"/> on. Returns how many batches the epoch
    /// has done (fewer than all when cancelled, after writing a mid-epoch checkpoint) and the last learning rate.
    /// </summary>
    private (int BatchesDone, double LearningRate) TrainBatches(FitContext fit, TrainingState state, int epoch, EpochRun run,
        CancellationToken cancellationToken)
    {
        var sinceSave = Stopwatch.StartNew();
        void SavePartial(int batchesDone)
        {
            Checkpoint.Save(PartialCheckpointPath,
                state with { InProgress = run.Snapshot(batchesDone), ElapsedSeconds = fit.ElapsedSeconds },
                SaveModule(fit.Model), fit.Ema == null ? null : SaveModule(fit.Ema), SaveOptimizer(fit.Optimizer));
            sinceSave.Restart();
        }
        double lr = 0;
        for (var b = run.FirstBatch; b < fit.Batches; b++)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                if (b > 0)
                {
                    SavePartial(b);
                    Log($"cancelled in epoch {epoch} after batch {b}/{fit.Batches}; continue with --resume");
                }
                return (b, lr);
            }
            lr = LrSchedule.At(_options, state.Schedule, epoch - 1 + (double)b / fit.Batches);
            SetLearningRate(fit.Optimizer, lr);
            TrainBatch(fit, state.Normalization, epoch, b, run);
            if (PartialCheckpointInterval is { } every && sinceSave.Elapsed >= every && b + 1 < fit.Batches)
            {
                SavePartial(b + 1);
            }
            fit.Progress?.Report(new TrainingProgress(TrainingPhase.Batch, epoch, _options.Epochs, b + 1, fit.Batches,
                run.MeanLoss, run.Accuracy, run.ImagesPerSecond));
        }
        return (fit.Batches, lr);
    }

    /// <summary>One optimizer step on batch <paramref name="b"/> of the epoch's order, its loss and hits added to <paramref name="run"/>.</summary>
    private void TrainBatch(FitContext fit, Normalization normalization, int epoch, int b, EpochRun run)
    {
        using var scope = NewDisposeScope();
        var augment = fit.Augment;
        var start = b * fit.BatchSize;
        var end = Math.Min(fit.Train.Count, start + fit.BatchSize);
        var index = run.Order.narrow(0, start, end - start);
        var scaled = fit.Train.Pixels.index_select(0, index).to(ScalarType.Float32).DivScalarInPlace(255);
        var augmented = Augmentation.Apply(scaled, augment, run.Augment);
        var target = SmoothTargets(fit.Train.Targets.index_select(0, index), fit.Train.ClassCount);
        // Offline teacher targets belong to the faces, so a mixed batch mixes them with its labels; an online
        // teacher looks at the mixed faces themselves.
        var offlineTeacher = fit.Teacher is { IsOffline: true } ? fit.Teacher.OfflineProbabilities(index) : null;
        if (augment.MixesBatch)
        {
            // Seeded per batch, not per epoch, so a run resumed mid-epoch mixes as it would have.
            var mixRandom = new Random(unchecked((int)(EpochSeed(epoch, 4) * 1_000_003L + b)));
            var classes = target.shape[1];
            var targets = offlineTeacher is null ? target : cat([target, offlineTeacher], 1);
            (augmented, targets, _) = BatchMixing.Apply(augmented, targets, augment, mixRandom);
            target = targets.narrow(1, 0, classes);
            offlineTeacher = offlineTeacher is null ? null : targets.narrow(1, classes, classes);
        }
        var input = Preprocessing.NormalizeScaled(augmented, normalization);
        fit.PassCopy?.Pull();
        var logits = fit.PassCopy is { } copy ? copy.Forward(input) : fit.Model.forward(input);
        // The loss sees prior-shifted logits, so the logits themselves learn the class-balanced answer.
        var seen = _options.LogitAdjustment > 0 ? logits.add(fit.Train.LogPrior.mul(_options.LogitAdjustment)) : logits;
        var loss = fit.Teacher switch
        {
            null => SoftCrossEntropy(seen, target),
            _ => DistillationLoss(seen, target, offlineTeacher?.log() ?? fit.Teacher.Logits(augmented, index),
                _options.DistillWeight, _options.DistillTemperature),
        };
        fit.Optimizer.zero_grad();
        loss.backward();
        fit.PassCopy?.Push();
        fit.Optimizer.step();
        if (fit.Ema != null) WeightMixing.MixInto(fit.Ema, fit.Model, EmaDecayAt(_options.Ema, (long)(epoch - 1) * fit.Batches + b));
        run.Add(loss.item<float>(), logits.argmax(1).eq(fit.Train.Labels.index_select(0, index)).sum().item<long>(), end - start);
    }

    /// <summary>
    /// Validates the finished epoch, records it, and writes what depends on it: checkpoints, the package (when
    /// best), history.csv, curves.png and the log line. Returns the state after the epoch.
    /// </summary>
    private TrainingState CompleteEpoch(FitContext fit, TrainingState state, int epoch, EpochRun run, double lr)
    {
        // Read before validation: the run's clock keeps going through it, and img/s is the training speed.
        var trainImagesPerSecond = run.ImagesPerSecond;
        fit.Progress?.Report(new TrainingProgress(TrainingPhase.Validating, epoch, _options.Epochs, fit.Batches, fit.Batches,
            run.MeanLoss, run.Accuracy, trainImagesPerSecond));
        var (valLoss, valAccuracy) = Validate(fit.Evaluated, fit.Validation, state.Normalization);
        var metrics = new EpochMetrics(epoch, run.MeanLoss, run.Accuracy, valLoss, valAccuracy, lr,
            run.Seconds, trainImagesPerSecond);
        var monitored = metrics.Monitored(_options.Monitor);
        var isBest = _options.TrainOnValidation || double.IsNaN(state.BestMonitored) || Better(monitored, state.BestMonitored);
        state = state with
        {
            Epoch = epoch,
            History = [.. state.History, metrics],
            BestMonitored = isBest ? monitored : state.BestMonitored,
            BestEpoch = isBest ? epoch : state.BestEpoch,
            EpochsWithoutImprovement = isBest ? 0 : state.EpochsWithoutImprovement + 1,
            Schedule = LrSchedule.AfterEpoch(_options, state.Schedule, monitored),
            ElapsedSeconds = fit.ElapsedSeconds,
        };
        state = state with { Stopped = StopsEarly(state) || epoch == _options.Epochs };

        var modelBytes = SaveModule(fit.Model);
        var emaBytes = fit.Ema == null ? null : SaveModule(fit.Ema);
        var optimizerBytes = SaveOptimizer(fit.Optimizer);
        if (isBest)
        {
            Checkpoint.Save(BestCheckpointPath, state, modelBytes, emaBytes, optimizerBytes);
            SavePackage(fit.Evaluated, state, fit.ClassNames);
        }
        Checkpoint.Save(LastCheckpointPath, state, modelBytes, emaBytes, optimizerBytes);
        File.Delete(PartialCheckpointPath); // now older than last.ckpt (if this is cut short, CheckpointToResume passes it over)
        AtomicFile.WriteAllText(HistoryPath, TrainingHistory.ToCsv(state.History));
        if (DrawCurvesEachEpoch)
        {
            TrainingCurves.Save(state.History, CurvesPath, _options.Architecture, state.BestEpoch, _options.Teacher is not null);
        }
        Log(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"epoch {epoch}/{_options.Epochs}: loss {metrics.TrainLoss:F4} acc {metrics.TrainAccuracy:P2} | val_loss {metrics.ValLoss:F4} val_acc {metrics.ValAccuracy:P2} | lr {lr:G3} | {metrics.Seconds:F0}s {metrics.ImagesPerSecond:F0} img/s{(isBest ? " | best" : "")}"));
        fit.Progress?.Report(new TrainingProgress(TrainingPhase.EpochCompleted, epoch, _options.Epochs, fit.Batches, fit.Batches,
            metrics.TrainLoss, metrics.TrainAccuracy, metrics.ImagesPerSecond, metrics, isBest));
        return state;
    }

    private bool StopsEarly(TrainingState state) =>
        _options.EarlyStoppingPatience > 0 && state.EpochsWithoutImprovement >= _options.EarlyStoppingPatience;

    /// <summary>
    /// The checkpoint <c>--resume</c> continues from in <paramref name="runDirectory"/>: the mid-epoch one when it
    /// is from the epoch after last.ckpt (a run stopped before it finished that epoch), else last.ckpt; null when
    /// the run has neither.
    /// </summary>
    public static string? ResumeCheckpointIn(string runDirectory)
    {
        var last = LastCheckpointIn(runDirectory);
        var partial = PartialCheckpointIn(runDirectory);
        var hasLast = File.Exists(last);
        if (!File.Exists(partial)) return hasLast ? last : null;
        if (!hasLast) return partial;
        return Checkpoint.LoadState(partial).Epoch >= Checkpoint.LoadState(last).Epoch ? partial : last;
    }

    private string? CheckpointToResume() => ResumeCheckpointIn(_runDirectory);

    private void CheckResumable(string checkpointPath, TrainOptions saved, int epochsDone)
    {
        // The epoch budget may change on resume, and so may the warm restarts as long as the epochs already
        // trained keep their learning rates (so the run stays one that could have been made uninterrupted);
        // anything else would silently make a different run.
        var extended = saved with { Epochs = _options.Epochs, RestartAt = _options.RestartAt, RestartLrFactor = _options.RestartLrFactor };
        if (extended != _options)
        {
            throw new ArgumentException($"{checkpointPath}: the run was started with different options; resume with the same options (only --epochs, --restart-at and --restart-lr-factor may change)");
        }
        if (!LrSchedule.SameUpTo(saved, _options, epochsDone))
        {
            var way = _options.Epochs > saved.Epochs
                ? $"to train longer, add a warm restart at epoch {Math.Max(epochsDone, saved.Epochs)} or later: --restart-at {Math.Max(epochsDone, saved.Epochs)}"
                : "a schedule cannot be cut short or reshaped on resume; start a new run from this one's package (fer models from-checkpoint, then --init-from) with a schedule of its own";
            throw new ArgumentException($"{checkpointPath}: these options would change the learning rate of the {epochsDone} epochs already trained (a cosine schedule stretches with --epochs); {way}");
        }
    }

    /// <summary>
    /// Copies a package's weights into the fresh network. The package's input normalization is returned and
    /// kept for the run, because the loaded weights only make sense on inputs scaled the way they were trained.
    /// </summary>
    private Normalization LoadInitialWeights(nn.Module<Tensor, Tensor> model, string path, IReadOnlyList<string> classNames)
    {
        using var package = LoadInitialPackage(path, _options.Architecture, _options.Narrow);
        if (package.ClassNames.SequenceEqual(classNames))
        {
            model.load_state_dict(package.Network.state_dict());
        }
        else
        {
            var shared = ClassHeadTransfer.LoadAcrossClasses(model, package.Network, package.ClassNames, classNames);
            Log($"--init-from {path} predicts {string.Join(",", package.ClassNames)} and the data has {string.Join(",", classNames)}: the output layer's rows for {(shared.Count == 0 ? "no class" : string.Join(", ", shared))} are carried over, the others start at random");
        }
        var narrowed = _options.Narrow ? $", narrowed into {_options.Architecture} (each convolution's channels of largest batch-norm scale)" : "";
        Log($"initial weights from {path} ({package.Metadata.Name}, {package.Metadata.Epochs} epochs{narrowed}); input normalization {package.Metadata.Normalization}");
        return package.Metadata.Normalization;
    }

    /// <summary>
    /// Loads the distillation teacher(s) and, offline, computes their targets on the training faces. The weights
    /// are hashed into the log because a resumed run reloads the teachers from their paths: a package replaced
    /// in between would silently teach something else.
    /// </summary>
    private DistillationTeacher LoadTeacher(string teacherOption, DataTensors train, TrainingState state,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        var teacher = DistillationTeacher.Load(teacherOption, train.ClassNames, Log);
        try
        {
            // A resumed run keeps its teachers: the options check refuses other paths, this a package replaced in place.
            var current = teacher.WeightsSha256;
            if (state.TeacherWeightsSha256 is { } started && !string.Equals(started, current, StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"{teacherOption}: --teacher weights (sha256 {Short(current)}) differ from those the run started with ({Short(started)})");
            }
            var mode = _options.DistillOffline ? "offline (predictions on the unaugmented training faces, computed once)" : "online (on each augmented batch)";
            Log($"distillation from {teacher.Count} teacher{(teacher.Count == 1 ? "" : "s, probabilities averaged")}, {mode}; weight {_options.DistillWeight}, temperature {_options.DistillTemperature}");
            if (_options.DistillOffline)
            {
                var cachePath = TeacherTargetsCache.PathIn(_runDirectory);
                var cache = teacher.TargetsIdentity is { } identity ? new TeacherTargetsCache(cachePath, identity, train.Data.Pixels) : null;
                var shared = cache is not null && TeacherTargetsCacheDirectory is { } folder ? cache.SharedIn(folder) : null;
                string why = "the teachers record no weights checksum";
                if (cache?.TryLoad(train.Count, train.ClassCount, out why) is { } saved)
                {
                    teacher.UseOffline(saved);
                    Log($"teacher targets for {train.Count} faces read from {cachePath}, saved when this run first computed them");
                    return teacher;
                }
                if (shared?.TryLoad(train.Count, train.ClassCount, out _) is { } kept)
                {
                    teacher.UseOffline(kept);
                    Log($"teacher targets for {train.Count} faces read from {shared.FilePath}, computed by an earlier run from the same teachers and faces");
                    SaveTargets(cache!, teacher.OfflineTargets!);
                    return teacher;
                }
                if (state.Epoch > 0 || state.InProgress is not null) Log($"teacher targets not reused ({why}); computing them again");
                var clock = Stopwatch.StartNew();
                var faces = new SyncProgress<long>(done => progress?.Report(new TrainingProgress(TrainingPhase.TeacherTargets,
                    state.Epoch, _options.Epochs, (int)done, train.Count, 0, 0, done / Math.Max(clock.Elapsed.TotalSeconds, 1e-3))));
                teacher.PrecomputeOffline(train.Pixels, faces, cancellationToken);
                Log($"teacher targets for {train.Count} faces in {clock.Elapsed.TotalSeconds:F0} s");
                if (cache is not null) SaveTargets(cache, teacher.OfflineTargets!);
                if (shared is not null) SaveTargets(shared, teacher.OfflineTargets!);
            }
            return teacher;
        }
        catch
        {
            teacher.Dispose();
            throw;
        }
    }

    private void SaveTargets(TeacherTargetsCache cache, Tensor targets)
    {
        try
        {
            cache.Save(targets);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Only a resume or a later run needs the file; a full disk should not end the run that just paid for the targets.
            Log($"warning: teacher targets not saved to {cache.FilePath} ({e.Message}); a later run computes them again");
        }
    }

    /// <summary>The first 16 hex digits of a weights checksum, as logs and messages show it.</summary>
    internal static string Short(string? sha) => sha is { Length: >= 16 } ? sha[..16] : "not recorded";

    /// <summary>
    /// (1 − w)·CE(labels) + w·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) (Hinton et al. 2015): the T² keeps
    /// the soft term's gradients on the scale of the hard one's as T changes. KL rather than cross-entropy so
    /// that the logged loss is not swamped by the teacher's entropy (same gradients).
    /// </summary>
    public static Tensor DistillationLoss(Tensor logits, Tensor target, Tensor teacherLogits, double weight, double temperature)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(teacherLogits);
        using var scope = NewDisposeScope();
        var teacherLog = nn.functional.log_softmax(teacherLogits.div(temperature), 1);
        var studentLog = nn.functional.log_softmax(logits.div(temperature), 1);
        var kl = teacherLog.exp().mul(teacherLog.sub(studentLog)).sum(1).mean();
        var hard = SoftCrossEntropy(logits, target);
        return hard.mul(1 - weight).add_(kl.mul(weight * temperature * temperature)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Loads the package named by <see cref="TrainOptions.InitFrom"/>, checking it holds <paramref name="architecture"/>,
    /// or with <paramref name="narrow"/> a wider network of the same layout, returned narrowed into it.
    /// </summary>
    public static EmotionModel LoadInitialPackage(string path, string architecture, bool narrow = false)
    {
        var package = EmotionModel.Load(path);
        var found = package.Metadata.Architecture;
        if (found == architecture && !narrow) return package;
        try
        {
            if (!narrow) throw new ArgumentException($"{path}: --init-from package is a '{found}' network but this run trains '{architecture}'; pass --arch {found}, or --narrow to start from it narrowed");
            if (found == architecture) throw new ArgumentException($"{path}: --narrow: the package is already a '{found}' network; drop --narrow");
            return ChannelPruning.Prune(package, architecture, package.Metadata.Name);
        }
        finally
        {
            package.Dispose();
        }
    }

    private long EpochSeed(int epoch, int stream) => unchecked(_options.Seed * 1_000_003L + epoch * 7919L + stream);

    private bool Better(double value, double best) =>
        _options.Monitor == "val_loss" ? value < best - 1e-9 : value > best + 1e-9;

    private void SavePackage(nn.Module<Tensor, Tensor> network, TrainingState state, IReadOnlyList<string> classNames)
    {
        var metadata = PackageMetadata(Path.GetFileName(Path.GetFullPath(_runDirectory)), state with { Options = _options, ClassNames = classNames });
        metadata.Metrics["best_epoch"] = state.History[^1].Epoch;
        // The package wraps (does not own) the training network, so it must not be disposed here.
        var package = new EmotionModel(metadata, network);
        package.Save(ModelPath);
        network.train(); // EmotionModel switched it to eval mode
    }

    /// <summary>
    /// The package of a checkpoint's epoch (its EMA weights when the run keeps an average, as packages are), for a
    /// run whose best-epoch package is not the one wanted: e.g. the last epoch of a fine-tune whose validation
    /// faces were training faces of the package it started from.
    /// </summary>
    public static EmotionModel PackageFromCheckpoint(string checkpointPath, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(checkpointPath);
        if (!File.Exists(checkpointPath)) throw new FileNotFoundException($"{checkpointPath}: no such checkpoint", checkpointPath);
        var (state, model, ema, _) = Checkpoint.Load(checkpointPath);
        if (state.InProgress is not null) throw new ArgumentException($"{checkpointPath}: a mid-epoch checkpoint; use a checkpoint of a finished epoch (last.ckpt or best.ckpt)");
        var network = ModelRegistry.Get(state.Options.Architecture).Create(state.ClassNames.Count);
        LoadModule(network, ema ?? model);
        return new EmotionModel(PackageMetadata(name, state), network);
    }

    /// <summary>The <c>model.json</c> of the package of <paramref name="state"/>'s last epoch.</summary>
    private static ModelMetadata PackageMetadata(string name, TrainingState state)
    {
        var epoch = state.History[^1];
        return new ModelMetadata
        {
            Name = name,
            Architecture = state.Options.Architecture,
            ClassNames = state.ClassNames,
            Normalization = state.Normalization,
            Training = state.Options.ToJson(),
            Dataset = state.Dataset,
            Epochs = state.Epoch,
            TrainingSeconds = Math.Round(state.ElapsedSeconds, 1),
            Metrics = new Dictionary<string, double>
            {
                ["val_accuracy"] = Math.Round(epoch.ValAccuracy, 6),
                ["val_loss"] = Math.Round(epoch.ValLoss, 6),
                ["train_accuracy"] = Math.Round(epoch.TrainAccuracy, 6),
            },
        };
    }

    private OptimizerHelper CreateOptimizer(nn.Module<Tensor, Tensor> model) => _options.Optimizer switch
    {
        OptimizerKind.Adam => optim.Adam(model.parameters(), _options.LearningRate, weight_decay: _options.WeightDecay),
        OptimizerKind.AdamW => optim.AdamW(model.parameters(), _options.LearningRate, weight_decay: _options.WeightDecay),
        OptimizerKind.Sgd => optim.SGD(model.parameters(), _options.LearningRate, momentum: _options.Momentum,
            weight_decay: _options.WeightDecay, nesterov: _options.Nesterov && _options.Momentum > 0),
        _ => throw new ArgumentOutOfRangeException(nameof(_options), _options.Optimizer, "unknown optimizer"),
    };

    private static void SetLearningRate(OptimizerHelper optimizer, double lr)
    {
        foreach (var group in optimizer.ParamGroups)
        {
            group.LearningRate = lr;
        }
    }

    private static Tensor TargetsOf(FaceDataset data) => data.LabelDistributions is { } soft
        ? tensor(soft, [data.Count, data.ClassCount])
        : nn.functional.one_hot(data.LabelsTensor(), data.ClassCount).to(ScalarType.Float32);

    private Tensor SmoothTargets(Tensor targets, int classes) => _options.LabelSmoothing > 0
        ? targets.mul(1 - _options.LabelSmoothing).add_(_options.LabelSmoothing / classes)
        : targets;

    /// <summary>Cross-entropy against a target distribution (one-hot, smoothed, or FER+ votes).</summary>
    public static Tensor SoftCrossEntropy(Tensor logits, Tensor target)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(target);
        return nn.functional.log_softmax(logits, 1).mul(target).sum(1).mean().neg();
    }

    private static (double Loss, double Accuracy) Validate(nn.Module<Tensor, Tensor> model, DataTensors data, Normalization normalization)
    {
        var (x, targets, labels) = (data.Pixels, data.Targets, data.Labels);
        model.eval();
        using var noGrad = no_grad();
        var count = x.shape[0];
        double lossSum = 0;
        long correct = 0;
        const int batch = 256;
        for (long start = 0; start < count; start += batch)
        {
            using var scope = NewDisposeScope();
            var n = Math.Min(batch, count - start);
            var input = Preprocessing.Normalize(x.narrow(0, start, n), normalization);
            var logits = model.forward(input);
            lossSum += SoftCrossEntropy(logits, targets.narrow(0, start, n)).item<float>() * n;
            correct += logits.argmax(1).eq(labels.narrow(0, start, n)).sum().item<long>();
        }
        return (lossSum / count, (double)correct / count);
    }

    /// <summary>
    /// The EMA decay ramps up as (1 + step) / (10 + step) until it reaches the configured value: with a fixed
    /// 0.999 the average would still hold ~64% of the random initial weights after a whole FER2013 epoch, and
    /// validating or shipping it early would score below chance.
    /// </summary>
    internal static double EmaDecayAt(double decay, long step) => Math.Min(decay, (1.0 + step) / (10.0 + step));

    private static byte[] SaveModule(nn.Module module)
    {
        using var ms = new MemoryStream();
        module.save(ms);
        return ms.ToArray();
    }

    private static void LoadModule(nn.Module module, byte[] bytes)
    {
        using var ms = new MemoryStream(bytes);
        module.load(ms);
    }

    private static byte[] SaveOptimizer(OptimizerHelper optimizer)
    {
        using var ms = new MemoryStream();
        using (var writer = new BinaryWriter(ms, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            optimizer.save_state_dict(writer);
        }
        return ms.ToArray();
    }

    private static Normalization ComputeNormalization(FaceDataset train)
    {
        double sum = 0, sumSq = 0;
        foreach (var p in train.Pixels)
        {
            var v = p / 255.0;
            sum += v;
            sumSq += v * v;
        }
        var n = (double)train.Pixels.Length;
        var mean = sum / n;
        var std = Math.Sqrt(Math.Max(1e-12, sumSq / n - mean * mean));
        return new Normalization(Math.Round(mean, 6), Math.Round(std, 6));
    }

    internal static DatasetFingerprint Fingerprint(FaceDataset data)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(data.Pixels);
        hash.AppendData(data.Labels.Select(l => (byte)l).ToArray());
        var source = data.Origins is { Count: > 0 } origins ? origins[0].Split(':')[0] : "memory";
        var counts = data.CountsByClass();
        return new DatasetFingerprint(source, data.Count, Convert.ToHexStringLower(hash.GetHashAndReset())[..16],
            data.ClassNames.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => counts[x.i]))
        {
            Splits = data.SplitsPresent.Select(s => s.ToString()).ToArray(),
        };
    }

    private void Log(string line)
    {
        Directory.CreateDirectory(_runDirectory);
        File.AppendAllText(LogPath, $"{DateTime.UtcNow:yyyy-MM-dd HH:mm:ss}Z {line}{Environment.NewLine}");
    }
}
