using System.Diagnostics;

using FerSharp.Data;
using FerSharp.Evaluation;
using FerSharp.Models;
using FerSharp.Training;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Tests;

[Collection("torch")]
public class TrainerTests
{
    private static TrainOptions Quick(int epochs) => new()
    {
        Architecture = "vgg-bn",
        Epochs = epochs,
        BatchSize = 32,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 2e-3,
        Augment = "none",
        Schedule = LrScheduleKind.None,
        EarlyStoppingPatience = 0,
        Seed = 7,
    };

    [Fact]
    public void Learns_a_learnable_synthetic_task_and_loss_decreases()
    {
        using var dir = new TempDir();
        var trainer = new Trainer(Quick(4), Path.Combine(dir.Path, "run")) { DrawCurvesEachEpoch = false };
        var result = trainer.Fit(Synthetic.Patterns(24, seed: 1), Synthetic.Patterns(8, seed: 2, split: DataSplit.PublicTest));
        Assert.Equal(4, result.History.Count);
        Assert.True(result.History[^1].TrainLoss < result.History[0].TrainLoss,
            $"loss did not decrease: {string.Join(", ", result.History.Select(h => h.TrainLoss))}");
        Assert.True(result.History.Max(h => h.ValAccuracy) >= 0.9,
            $"validation accuracy stayed at {string.Join(", ", result.History.Select(h => h.ValAccuracy))}");
        foreach (var file in new[] { trainer.HistoryPath, trainer.CurvesPath, trainer.LogPath, trainer.LastCheckpointPath, trainer.BestCheckpointPath,
                     Path.Combine(trainer.ModelPath, "model.json"), Path.Combine(trainer.RunDirectory, "config.json") })
        {
            Assert.True(File.Exists(file), $"{file} missing");
        }
        Assert.Equal(4, TrainingHistory.FromCsv(trainer.HistoryPath).Count);
    }

    [Fact]
    public void Logit_adjustment_makes_a_network_predict_the_common_class_less_often_where_nothing_is_learnable()
    {
        // Pure noise with four faces in five labelled happy: all a network can learn is the prior, which logit
        // adjustment takes out of its logits.
        static FaceDataset Noise(int count, int seed, DataSplit split)
        {
            var rng = new Random(seed);
            var pixels = new byte[count * FaceDataset.PixelsPerImage];
            rng.NextBytes(pixels);
            var labels = Enumerable.Range(0, count).Select(i => i % 5 == 4 ? i / 5 % 7 : 3).ToArray();
            return new FaceDataset(EmotionClasses.Fer2013, pixels, labels, Enumerable.Repeat(split, count).ToArray());
        }
        var train = Noise(280, 1, DataSplit.Training);
        var validation = Noise(140, 2, DataSplit.PublicTest);
        int HappyPredicted(double adjustment)
        {
            using var dir = new TempDir();
            var trainer = new Trainer(Quick(4) with { LogitAdjustment = adjustment, LearningRate = 5e-3 }, Path.Combine(dir.Path, "run")) { DrawCurvesEachEpoch = false };
            trainer.Fit(train, validation);
            // The last epoch, not the best by validation accuracy: on these faces that is whichever calls most happy.
            using var model = Trainer.PackageFromCheckpoint(trainer.LastCheckpointPath, "last");
            return Evaluator.Evaluate(model, validation).Metrics.PerClass.Single(c => c.Name == "happy").Predicted;
        }
        var plain = HappyPredicted(0);
        var adjusted = HappyPredicted(1);
        Assert.True(plain >= 100, $"without adjustment {plain} of 140 noise faces were called happy");
        Assert.True(adjusted < plain * 0.7, $"with adjustment {adjusted} of 140 were called happy, without {plain}");
        Assert.Contains("--logit-adjust", Cli.Run("train", "--help").Stdout);
    }

    [Fact]
    public void Ema_weights_follow_the_model_early_in_a_run_instead_of_the_random_start()
    {
        // With a fixed 0.999 decay the validated (EMA) weights would still be ~98% random after these
        // ~20 steps; the warm-up makes them track the model, so they learn the task as the model does.
        using var dir = new TempDir();
        var trainer = new Trainer(Quick(4) with { Ema = 0.999 }, Path.Combine(dir.Path, "run")) { DrawCurvesEachEpoch = false };
        var result = trainer.Fit(Synthetic.Patterns(24, seed: 1), Synthetic.Patterns(8, seed: 2, split: DataSplit.PublicTest));
        Assert.True(result.History.Max(h => h.ValAccuracy) >= 0.9,
            $"EMA validation accuracy stayed at {string.Join(", ", result.History.Select(h => h.ValAccuracy))}");
        Assert.Equal(0.1, Trainer.EmaDecayAt(0.999, 0), 6);
        Assert.Equal(0.999, Trainer.EmaDecayAt(0.999, 100_000), 6);
        Assert.True(Trainer.EmaDecayAt(0.999, 449) < 0.99);
    }

    [Fact]
    public void Seed_cnn_trains_and_its_package_reloads_with_identical_outputs()
    {
        using var dir = new TempDir();
        var options = Quick(2) with { Architecture = "seed-cnn", LearningRate = 1e-3 };
        var trainer = new Trainer(options, Path.Combine(dir.Path, "run")) { DrawCurvesEachEpoch = false };
        var validation = Synthetic.Patterns(4, seed: 2, split: DataSplit.PublicTest);
        trainer.Fit(Synthetic.Patterns(16, seed: 1), validation);

        using var first = EmotionModel.Load(trainer.ModelPath);
        using var second = EmotionModel.Load(trainer.ModelPath);
        using var faces = validation.ToTensor();
        using var x = first.PredictProbabilities(faces);
        using var y = second.PredictProbabilities(faces);
        Assert.True(x.allclose(y, rtol: 0, atol: 0), "reloaded model gives different outputs");
        // Recognition reads the same package without libtorch and agrees to float rounding.
        using var onnx = OnnxFaceClassifier.Load(trainer.ModelPath);
        var rows = onnx.PredictProbabilities(Enumerable.Range(0, validation.Count).Select(i => validation.Face(i).ToArray()).ToList());
        var torchRows = first.PredictProbabilities(Enumerable.Range(0, validation.Count).Select(i => validation.Face(i).ToArray()).ToList());
        for (var i = 0; i < rows.Length; i++)
        {
            for (var c = 0; c < 7; c++) Assert.Equal(torchRows[i][c], rows[i][c], 1e-4);
        }
        using var a = first.PredictProbabilities(faces);
        Assert.Equal(new long[] { validation.Count, 7 }, a.shape);
        Assert.True(a.sum(1).allclose(ones(validation.Count), atol: 1e-5), "probabilities do not sum to 1");
        Assert.Equal("seed-cnn", first.Metadata.Architecture);
        Assert.Equal(EmotionClasses.Fer2013, first.ClassNames);
        Assert.Equal(2_345_607, first.Metadata.Parameters);
    }

    [Fact]
    public void Resume_after_a_stop_repeats_the_uninterrupted_history_exactly()
    {
        using var dir = new TempDir();
        var train = Synthetic.Patterns(12, seed: 1);
        var validation = Synthetic.Patterns(4, seed: 2, split: DataSplit.PublicTest);
        var options = Quick(3) with { Augment = "rotate=10,zoom=0.1,flip,erase=0.3,mixup=0.2,cutmix=1", Schedule = LrScheduleKind.Cosine, WarmupEpochs = 1, Ema = 0.9 };

        // Other threads of the process drawing from (and reseeding) libtorch's global generator, as
        // parallel tests or a server do, must not change a run: every draw of a run is on its own generators.
        using var noise = new GlobalRandomNoise();
        var straight = new Trainer(options, Path.Combine(dir.Path, "straight")) { DrawCurvesEachEpoch = false }.Fit(train, validation);

        var resumedDir = Path.Combine(dir.Path, "resumed");
        var stopped = StopAfterEpoch(2, options, resumedDir, train, validation);
        Assert.True(stopped.Cancelled);
        Assert.Equal(2, stopped.History.Count);

        var resumed = new Trainer(options, resumedDir) { DrawCurvesEachEpoch = false }.Fit(train, validation, resume: true);
        AssertSameHistory(straight, resumed);
    }

    [Fact]
    public void BFloat16_passes_train_the_float32_weights_and_resume_exactly()
    {
        using var dir = new TempDir();
        // vgg-bn has batch norms (kept float32 in the copy) and dropout (bound to the run's generator in the copy).
        var options = Quick(4) with { Precision = TrainingPrecision.BFloat16 };
        var straightDir = Path.Combine(dir.Path, "straight");
        var (straight, train, validation) = TrainToLearnPatterns(options, straightDir);

        using (var package = EmotionModel.Load(Path.Combine(straightDir, "model")))
        {
            Assert.All(package.Network.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
            Assert.Equal(TrainingPrecision.BFloat16, package.Metadata.TrainOptions()!.Precision);
        }
        // A float32 run of the same recipe trains the same faces in other arithmetic: close, not equal.
        var float32 = new Trainer(options with { Precision = TrainingPrecision.Float32 }, Path.Combine(dir.Path, "float32")) { DrawCurvesEachEpoch = false }.Fit(train, validation);
        var lossGap = Math.Abs(float32.History[0].TrainLoss - straight.History[0].TrainLoss);
        Assert.True(lossGap is > 0 and < 0.1, $"first-epoch loss float32 {float32.History[0].TrainLoss}, bfloat16 {straight.History[0].TrainLoss}");

        AssertResumesExactly(straight, stopAfter: 2, options, options with { Precision = TrainingPrecision.Float32 }, Path.Combine(dir.Path, "resumed"), train, validation);
    }

    [Fact]
    public void Channels_last_passes_compute_the_same_step_in_another_layout()
    {
        manual_seed(3);
        using var master = ModelRegistry.Create("vgg-bn", 7);
        using var copy = new PassCopy(master, ModelRegistry.Create("vgg-bn", 7), TrainingPrecision.Float32, TrainingMemoryFormat.ChannelsLast);
        master.train();
        // Batch norms in training mode (their NHWC kernels are part of the path), dropout off: its masks are random.
        foreach (var dropout in master.modules().Concat(copy.Network.modules()).OfType<SeededDropout>()) dropout.eval();
        using var x = rand(4, 1, 48, 48);
        using var y = tensor(new long[] { 0, 3, 5, 6 });

        copy.Pull();
        using var fromCopy = copy.Forward(x);
        using var copyLoss = nn.functional.cross_entropy(fromCopy, y);
        copyLoss.backward();
        copy.Push();
        var copyGradients = master.parameters().Select(p => p.grad!.clone()).ToList();
        var convWeight = copy.Network.named_parameters().First(p => p.parameter.dim() == 4 && p.parameter.shape[1] > 1).parameter;
        // NHWC strides: the channel dimension is the innermost.
        Assert.Equal(1, convWeight.stride(1));
        Assert.All(master.parameters(), p => Assert.True(p.is_contiguous() && p.grad!.is_contiguous()));

        master.zero_grad();
        using var direct = master.forward(x);
        using var directLoss = nn.functional.cross_entropy(direct, y);
        directLoss.backward();
        Assert.True(fromCopy.allclose(direct, rtol: 1e-4, atol: 1e-5), $"logits differ by {(fromCopy - direct).abs().max().item<float>()}");
        foreach (var (p, fromChannelsLast) in master.parameters().Zip(copyGradients))
        {
            var scale = Math.Max(1e-3, p.grad!.abs().max().item<float>());
            var gap = (fromChannelsLast - p.grad!).abs().max().item<float>();
            Assert.True(gap <= 1e-3 * scale, $"a gradient differs by {gap} (largest {scale})");
        }
    }

    [Fact]
    public void Channels_last_runs_train_record_the_layout_and_resume_exactly()
    {
        using var dir = new TempDir();
        var options = Quick(3) with { MemoryFormat = TrainingMemoryFormat.ChannelsLast };
        var straightDir = Path.Combine(dir.Path, "straight");
        var (straight, train, validation) = TrainToLearnPatterns(options, straightDir);
        using (var package = EmotionModel.Load(Path.Combine(straightDir, "model")))
        {
            Assert.Equal(TrainingMemoryFormat.ChannelsLast, package.Metadata.TrainOptions()!.MemoryFormat);
            Assert.All(package.Network.parameters(), p => Assert.True(p.is_contiguous()));
        }

        AssertResumesExactly(straight, stopAfter: 1, options, options with { MemoryFormat = TrainingMemoryFormat.Contiguous }, Path.Combine(dir.Path, "resumed"), train, validation);
    }

    [Fact]
    public void Pass_copy_refuses_another_architecture_and_reads_cpu_flags()
    {
        using var master = ModelRegistry.Create("fast-cnn", 7);
        Assert.Contains("not the master's architecture",
            Assert.Throws<ArgumentException>(() => new PassCopy(master, ModelRegistry.Create("vgg-bn", 7), TrainingPrecision.BFloat16)).Message);

        using var dir = new TempDir();
        var withBf16 = dir.File("with");
        File.WriteAllLines(withBf16, ["processor\t: 0", "flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni"]);
        var without = dir.File("without");
        File.WriteAllLines(without, ["processor\t: 0", "flags\t\t: fpu avx2 fma"]);
        Assert.True(PassCopy.CpuHasNativeBFloat16(withBf16));
        Assert.False(PassCopy.CpuHasNativeBFloat16(without));
        Assert.Null(PassCopy.CpuHasNativeBFloat16(dir.File("absent")));
    }

    /// <summary>Trains <paramref name="options"/> uninterrupted on learnable synthetic patterns, which it must learn.</summary>
    private static (TrainingResult Straight, FaceDataset Train, FaceDataset Validation) TrainToLearnPatterns(TrainOptions options, string runDir)
    {
        var train = Synthetic.Patterns(24, seed: 1);
        var validation = Synthetic.Patterns(8, seed: 2, split: DataSplit.PublicTest);
        var straight = new Trainer(options, runDir) { DrawCurvesEachEpoch = false }.Fit(train, validation);
        Assert.True(straight.History.Max(h => h.ValAccuracy) >= 0.9,
            $"validation accuracy stayed at {string.Join(", ", straight.History.Select(h => h.ValAccuracy))}");
        return (straight, train, validation);
    }

    /// <summary>Trains <paramref name="options"/> in <paramref name="runDir"/> and stops it ("Ctrl+C") once epoch <paramref name="epoch"/> is done.</summary>
    private static TrainingResult StopAfterEpoch(int epoch, TrainOptions options, string runDir, FaceDataset train, FaceDataset validation)
    {
        var cts = new CancellationTokenSource();
        var progress = new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Phase == TrainingPhase.EpochCompleted && p.Epoch == epoch) cts.Cancel();
        });
        return new Trainer(options, runDir) { DrawCurvesEachEpoch = false }.Fit(train, validation, progress: progress, cancellationToken: cts.Token);
    }

    /// <summary>
    /// A run of <paramref name="options"/> stopped after <paramref name="stopAfter"/> epochs and resumed repeats
    /// <paramref name="straight"/>'s history; resuming it with <paramref name="changed"/> options is refused.
    /// </summary>
    private static void AssertResumesExactly(TrainingResult straight, int stopAfter, TrainOptions options, TrainOptions changed, string runDir, FaceDataset train, FaceDataset validation)
    {
        StopAfterEpoch(stopAfter, options, runDir, train, validation);
        var resumed = new Trainer(options, runDir) { DrawCurvesEachEpoch = false }.Fit(train, validation, resume: true);
        AssertSameHistory(straight, resumed);
        Assert.Throws<ArgumentException>(() => new Trainer(changed, runDir) { DrawCurvesEachEpoch = false }.Fit(train, validation, resume: true));
    }

    private static void AssertSameHistory(TrainingResult straight, TrainingResult resumed)
    {
        Assert.Equal(straight.History.Count, resumed.History.Count);
        foreach (var (x, y) in straight.History.Zip(resumed.History))
        {
            Assert.Equal(x.TrainLoss, y.TrainLoss, 6);
            Assert.Equal(x.TrainAccuracy, y.TrainAccuracy, 6);
            Assert.Equal(x.ValLoss, y.ValLoss, 6);
            Assert.Equal(x.ValAccuracy, y.ValAccuracy, 6);
            Assert.Equal(x.LearningRate, y.LearningRate, 12);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Resume_within_an_epoch_repeats_the_uninterrupted_history_exactly(bool killed)
    {
        // Cancelled (Ctrl+C) writes partial.ckpt at the batch it reached; "killed" is a process that dies without
        // cancelling, which leaves only the periodic mid-epoch checkpoint (written after every batch here).
        using var dir = new TempDir();
        var train = Synthetic.Patterns(6, seed: 1); // 42 faces: 6 batches of 8 (the last of 2)
        var validation = Synthetic.Patterns(4, seed: 2, split: DataSplit.PublicTest);
        var options = Quick(3) with
        {
            BatchSize = 8,
            Augment = "rotate=10,zoom=0.1,flip,erase=0.3,mixup=0.2,cutmix=1",
            Schedule = LrScheduleKind.Cosine,
            WarmupEpochs = 1,
            Ema = 0.9,
        };
        var straight = new Trainer(options, Path.Combine(dir.Path, "straight")) { DrawCurvesEachEpoch = false }.Fit(train, validation);

        var runDir = Path.Combine(dir.Path, "stopped");
        var cts = new CancellationTokenSource();
        var progress = new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Phase != TrainingPhase.Batch || p.Epoch != 2 || p.Batch != 3) return;
            if (killed) throw new SimulatedCrash();
            cts.Cancel();
        });
        var first = new Trainer(options, runDir) { DrawCurvesEachEpoch = false, PartialCheckpointInterval = killed ? TimeSpan.Zero : null };
        if (killed)
        {
            Assert.Throws<SimulatedCrash>(() => first.Fit(train, validation, progress: progress));
        }
        else
        {
            var stopped = first.Fit(train, validation, progress: progress, cancellationToken: cts.Token);
            Assert.True(stopped.Cancelled && stopped.SavedMidEpoch);
            Assert.Single(stopped.History);
        }
        Assert.Equal(3, Checkpoint.LoadState(first.PartialCheckpointPath).InProgress?.Batches);

        var resumedTrainer = new Trainer(options, runDir) { DrawCurvesEachEpoch = false };
        var resumed = resumedTrainer.Fit(train, validation, resume: true);
        Assert.Contains($"resumed from {first.PartialCheckpointPath} in epoch 2 after batch 3", File.ReadAllText(resumedTrainer.LogPath));
        Assert.False(File.Exists(first.PartialCheckpointPath), "partial.ckpt outlived the epoch it belongs to");
        AssertSameHistory(straight, resumed);
    }

    [Fact]
    public void A_partial_checkpoint_older_than_the_last_epoch_is_passed_over()
    {
        // A run killed between writing last.ckpt and deleting partial.ckpt leaves a partial checkpoint of the
        // epoch before; resuming from it would train that epoch's rest twice.
        using var dir = new TempDir();
        var train = Synthetic.Patterns(6, seed: 1);
        var validation = Synthetic.Patterns(4, seed: 2, split: DataSplit.PublicTest);
        var options = Quick(2) with { BatchSize = 8 };
        var runDir = Path.Combine(dir.Path, "run");
        var stale = Path.Combine(dir.Path, "stale.ckpt");
        var progress = new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Phase == TrainingPhase.Batch && p.Epoch == 1 && p.Batch == 2) File.Copy(Path.Combine(runDir, "checkpoints", "partial.ckpt"), stale);
        });
        var trainer = new Trainer(options with { Epochs = 1 }, runDir) { DrawCurvesEachEpoch = false, PartialCheckpointInterval = TimeSpan.Zero };
        trainer.Fit(train, validation, progress: progress);
        File.Copy(stale, trainer.PartialCheckpointPath);

        var resumedTrainer = new Trainer(options, runDir) { DrawCurvesEachEpoch = false };
        var resumed = resumedTrainer.Fit(train, validation, resume: true);
        Assert.Contains($"resumed from {trainer.LastCheckpointPath} after epoch 1", File.ReadAllText(resumedTrainer.LogPath));
        Assert.Equal(2, resumed.History.Count);
    }

    [Fact]
    public void Resume_with_different_options_is_refused()
    {
        using var dir = new TempDir();
        var run = Path.Combine(dir.Path, "run");
        new Trainer(Quick(1), run) { DrawCurvesEachEpoch = false }.Fit(Synthetic.Patterns(4), Synthetic.Patterns(2, split: DataSplit.PublicTest));
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(Quick(2) with { LearningRate = 0.5 }, run).Fit(
            Synthetic.Patterns(4), Synthetic.Patterns(2, split: DataSplit.PublicTest), resume: true));
        Assert.Contains("different options", ex.Message);
        Assert.Throws<IOException>(() => new Trainer(Quick(1), run).Fit(Synthetic.Patterns(4), Synthetic.Patterns(2, split: DataSplit.PublicTest)));
    }

    [Fact]
    public void A_finished_cosine_run_can_be_extended_by_a_warm_restart_but_not_by_rewriting_its_past()
    {
        using var dir = new TempDir();
        var run = Path.Combine(dir.Path, "run");
        var (train, validation) = (Synthetic.Patterns(4), Synthetic.Patterns(2, split: DataSplit.PublicTest));
        var first = Quick(2) with { Schedule = LrScheduleKind.Cosine, WarmupEpochs = 1 };
        new Trainer(first, run) { DrawCurvesEachEpoch = false }.Fit(train, validation);

        var ex = Assert.Throws<ArgumentException>(() => new Trainer(first with { Epochs = 4, WarmupEpochs = 0.5 }, run).Fit(train, validation, resume: true));
        Assert.Contains("different options", ex.Message);
        // Stretching the one cosine cycle over 4 epochs would change the rates epochs 1-2 were trained with.
        ex = Assert.Throws<ArgumentException>(() => new Trainer(first with { Epochs = 4 }, run).Fit(train, validation, resume: true));
        Assert.Contains("already trained", ex.Message);
        Assert.Contains("--restart-at 2", ex.Message);
        // Nor can fewer epochs cut it short: the cycle would end sooner, which also changes its rates.
        ex = Assert.Throws<ArgumentException>(() => new Trainer(first with { Epochs = 1 }, run).Fit(train, validation, resume: true));
        Assert.Contains("already trained", ex.Message);
        Assert.Contains("from-checkpoint", ex.Message);

        var restarted = first with { Epochs = 4, RestartAt = "2", RestartLrFactor = 0.5 };
        var extended = new Trainer(restarted, run) { DrawCurvesEachEpoch = false }.Fit(train, validation, resume: true);
        Assert.Equal(4, extended.History.Count);
        // One batch per epoch, logged at the epoch's start: epoch 3 begins the restart's warm-up, epoch 4 its peak.
        Assert.Equal(restarted.LearningRate * 0.5, extended.History[3].LearningRate, 9);
        Assert.True(extended.History[3].LearningRate > extended.History[2].LearningRate, "the restart should raise the rate again");
    }

    /// <summary>The synthetic task and a vgg-bn package (standardized inputs) that has learned it.</summary>
    private static (FaceDataset Train, FaceDataset Validation, Trainer Teacher) LearnedTask(TempDir dir)
    {
        var train = Synthetic.Patterns(24, seed: 1);
        var validation = Synthetic.Patterns(8, seed: 2, split: DataSplit.PublicTest);
        var teacher = new Trainer(Quick(4) with { Standardize = true }, Path.Combine(dir.Path, "teacher")) { DrawCurvesEachEpoch = false };
        var result = teacher.Fit(train, validation);
        Assert.True(result.BestMonitored >= 0.9, $"the starting model did not learn the task ({result.BestMonitored})");
        return (train, validation, teacher);
    }

    [Fact]
    public void Init_from_a_package_starts_from_its_weights_and_normalization()
    {
        using var dir = new TempDir();
        var (train, validation, teacher) = LearnedTask(dir);

        // With a learning rate too small to learn anything in one epoch, only the starting weights decide
        // the score: the package's run keeps its accuracy, a random start stays near chance.
        var still = Quick(1) with { Optimizer = OptimizerKind.Sgd, LearningRate = 1e-7, Momentum = 0 };
        var fromPackage = new Trainer(still with { InitFrom = teacher.ModelPath }, Path.Combine(dir.Path, "continued")) { DrawCurvesEachEpoch = false }
            .Fit(train, validation);
        var fromScratch = new Trainer(still, Path.Combine(dir.Path, "scratch")) { DrawCurvesEachEpoch = false }.Fit(train, validation);
        Assert.True(fromPackage.History[0].ValAccuracy >= 0.9, $"init-from run scored {fromPackage.History[0].ValAccuracy}");
        Assert.True(fromScratch.History[0].ValAccuracy < 0.6, $"random start scored {fromScratch.History[0].ValAccuracy}");

        using var source = EmotionModel.Load(teacher.ModelPath);
        using var continued = EmotionModel.Load(fromPackage.ModelPath);
        Assert.Equal(source.Metadata.Normalization, continued.Metadata.Normalization);
        Assert.Equal(teacher.ModelPath, continued.Metadata.TrainOptions()!.InitFrom);
        Assert.Contains($"initial weights from {teacher.ModelPath}", File.ReadAllText(Path.Combine(dir.Path, "continued", "log.txt")));

        var wrongArch = Assert.Throws<ArgumentException>(() => new Trainer(still with { Architecture = "fast-cnn", InitFrom = teacher.ModelPath },
            Path.Combine(dir.Path, "wrong")).Fit(train, validation));
        Assert.Contains("'vgg-bn' network", wrongArch.Message);
        Assert.Throws<FileNotFoundException>(() => new Trainer(still with { InitFrom = Path.Combine(dir.Path, "nowhere") },
            Path.Combine(dir.Path, "missing")).Fit(train, validation));
    }

    [Fact]
    public void Narrow_starts_from_a_wider_package_narrowed_and_the_card_says_so()
    {
        using var dir = new TempDir();
        var train = Synthetic.Patterns(16, seed: 1);
        var validation = Synthetic.Patterns(8, seed: 2, split: DataSplit.PublicTest);
        var wide = new Trainer(Quick(1) with { Architecture = "fast-cnn" }, Path.Combine(dir.Path, "wide")) { DrawCurvesEachEpoch = false };
        wide.Fit(train, validation);

        var narrow = Quick(1) with { Architecture = "fast-cnn-slim", InitFrom = wide.ModelPath, Narrow = true };
        var slim = new Trainer(narrow, Path.Combine(dir.Path, "slim")) { DrawCurvesEachEpoch = false };
        slim.Fit(train, validation);
        Assert.Contains("narrowed into fast-cnn-slim", File.ReadAllText(Path.Combine(dir.Path, "slim", "log.txt")), StringComparison.Ordinal);
        using (var package = EmotionModel.Load(slim.ModelPath))
        {
            Assert.Equal("fast-cnn-slim", package.Metadata.Architecture);
            Assert.Contains($"--init-from {wide.ModelPath} --narrow", ModelCard.Command(package.Metadata.TrainOptions()!, ferPlus: false), StringComparison.Ordinal);
        }

        var withoutNarrow = Assert.Throws<ArgumentException>(() => new Trainer(narrow with { Narrow = false }, Path.Combine(dir.Path, "plain")).Fit(train, validation));
        Assert.Contains("--narrow", withoutNarrow.Message, StringComparison.Ordinal);
        var sameArchitecture = Assert.Throws<ArgumentException>(() => new Trainer(narrow with { Architecture = "fast-cnn" }, Path.Combine(dir.Path, "same")).Fit(train, validation));
        Assert.Contains("already a 'fast-cnn' network", sameArchitecture.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => (narrow with { InitFrom = null }).Validate());
    }

    [Fact]
    public void A_distilled_run_learns_the_teachers_answers_not_its_own_labels()
    {
        using var dir = new TempDir();
        var (train, validation, teacher) = LearnedTask(dir);

        // The student's own labels are all wrong (shifted by one class); only the teacher knows the task.
        var wrong = new FaceDataset(train.ClassNames, train.Pixels.ToArray(), train.Labels.Select(l => (l + 1) % train.ClassCount).ToArray(),
            Enumerable.Repeat(DataSplit.Training, train.Count).ToArray());
        var student = Quick(4) with { Architecture = "fast-cnn", Teacher = teacher.ModelPath, DistillWeight = 1, DistillTemperature = 2 };
        var taught = new Trainer(student, Path.Combine(dir.Path, "taught")) { DrawCurvesEachEpoch = false }.Fit(wrong, validation);
        var untaught = new Trainer(student with { Teacher = null }, Path.Combine(dir.Path, "untaught")) { DrawCurvesEachEpoch = false }.Fit(wrong, validation);
        Assert.True(taught.BestMonitored >= 0.9, $"the distilled student scored {taught.BestMonitored}");
        Assert.True(untaught.History[^1].ValAccuracy < 0.3, $"the student without a teacher scored {untaught.History[^1].ValAccuracy}");
        Assert.Contains($"teacher {teacher.ModelPath}", File.ReadAllText(Path.Combine(dir.Path, "taught", "log.txt")));
        using (var package = EmotionModel.Load(taught.ModelPath))
        {
            Assert.Equal(teacher.ModelPath, package.Metadata.TrainOptions()!.Teacher);
        }

        // A resumed run keeps its teacher: another package put at the --teacher path in between is refused.
        var longer = student with { Epochs = 5 };
        Trainer Resumed() => new(longer, Path.Combine(dir.Path, "taught")) { DrawCurvesEachEpoch = false };
        var original = Path.Combine(dir.Path, "original-teacher");
        Directory.Move(teacher.ModelPath, original);
        Directory.CreateDirectory(teacher.ModelPath);
        foreach (var file in Directory.GetFiles(untaught.ModelPath))
        {
            File.Copy(file, Path.Combine(teacher.ModelPath, Path.GetFileName(file)));
        }
        var swapped = Assert.Throws<ArgumentException>(() => Resumed().Fit(wrong, validation, resume: true));
        Assert.Contains("differ from those the run started with", swapped.Message);
        Directory.Delete(teacher.ModelPath, recursive: true);
        Directory.Move(original, teacher.ModelPath);
        Assert.Equal(5, Resumed().Fit(wrong, validation, resume: true).History.Count);

        var mismatched = Synthetic.Patterns(4);
        FaceDataset FerPlus(DataSplit split) => new(EmotionClasses.FerPlus, mismatched.Pixels.ToArray(), mismatched.Labels.ToArray(),
            Enumerable.Repeat(split, mismatched.Count).ToArray());
        var ex = Assert.Throws<ArgumentException>(() => new Trainer(student, Path.Combine(dir.Path, "ferplus")).Fit(FerPlus(DataSplit.Training), FerPlus(DataSplit.PublicTest)));
        Assert.Contains("--teacher", ex.Message);
    }

    [Fact]
    public void An_ensemble_teacher_averages_its_packages_probabilities_online_and_offline_alike()
    {
        using var dir = new TempDir();
        var (train, validation, learned) = LearnedTask(dir);
        // A second, different package: another seed, one epoch, no standardization (its own input scaling).
        var other = new Trainer(Quick(1) with { Seed = 9 }, Path.Combine(dir.Path, "other")) { DrawCurvesEachEpoch = false };
        other.Fit(train, validation);

        using var scope = NewDisposeScope();
        using var a = EmotionModel.Load(learned.ModelPath);
        using var b = EmotionModel.Load(other.ModelPath);
        var faces = train.ToTensor().narrow(0, 0, 10);
        var expected = a.PredictProbabilities(faces).add(b.PredictProbabilities(faces)).div(2).log();

        using var teacher = DistillationTeacher.Load($"{learned.ModelPath}, {other.ModelPath}", train.ClassNames, _ => { });
        Assert.Equal(2, teacher.Count);
        Assert.Equal($"{a.Metadata.WeightsSha256}+{b.Metadata.WeightsSha256}", teacher.WeightsSha256);
        var index = arange(10L);
        var scaled = faces.to(ScalarType.Float32).div(255);
        var online = teacher.Logits(scaled, index);
        Assert.False(teacher.IsOffline);
        Assert.True(online.allclose(expected, rtol: 1e-4, atol: 1e-5), "online: the log of the packages' mean probabilities");

        teacher.PrecomputeOffline(train.ToTensor());
        Assert.True(teacher.IsOffline);
        // Offline, the faces are looked up by index whatever the (augmented) batch holds.
        var offline = teacher.Logits(zeros_like(scaled), index);
        Assert.True(offline.allclose(expected, rtol: 1e-4, atol: 1e-5), "offline: the same targets, computed once");
        var reordered = teacher.Logits(scaled, tensor(new long[] { 3, 0 }));
        Assert.True(reordered.allclose(expected.index_select(0, tensor(new long[] { 3, 0 })), rtol: 1e-4, atol: 1e-5));
    }

    [Fact]
    public void An_offline_distilled_run_learns_the_teachers_answers_and_refuses_options_without_a_teacher()
    {
        using var dir = new TempDir();
        var (train, validation, teacher) = LearnedTask(dir);
        var copy = Path.Combine(dir.Path, "teacher-copy");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(teacher.ModelPath)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));

        // All the student's labels are wrong (shifted by one class); only the offline targets know the task.
        var wrong = new FaceDataset(train.ClassNames, train.Pixels.ToArray(), train.Labels.Select(l => (l + 1) % train.ClassCount).ToArray(),
            Enumerable.Repeat(DataSplit.Training, train.Count).ToArray());
        var student = Quick(4) with
        {
            Architecture = "fast-cnn",
            Teacher = $"{teacher.ModelPath},{copy}",
            DistillOffline = true,
            DistillWeight = 1,
            DistillTemperature = 2,
            Augment = "mixup=0.2", // mixed batches mix the looked-up targets with the faces
        };
        var shared = Path.Combine(dir.Path, "targets-cache");
        var taught = new Trainer(student, Path.Combine(dir.Path, "taught")) { DrawCurvesEachEpoch = false, TeacherTargetsCacheDirectory = shared }.Fit(wrong, validation);
        Assert.True(taught.BestMonitored >= 0.9, $"the offline-distilled student scored {taught.BestMonitored}");
        var log = File.ReadAllText(Path.Combine(dir.Path, "taught", "log.txt"));
        Assert.Contains("distillation from 2 teachers, probabilities averaged, offline", log);
        Assert.Contains($"teacher targets for {wrong.Count} faces", log);
        using (var package = EmotionModel.Load(taught.ModelPath))
        {
            Assert.True(package.Metadata.TrainOptions()!.DistillOffline);
        }
        // A resumed run reads the targets it saved instead of running the teachers again.
        Assert.True(File.Exists(TeacherTargetsCache.PathIn(Path.Combine(dir.Path, "taught"))));
        var resumed = new Trainer(student with { Epochs = 5 }, Path.Combine(dir.Path, "taught")) { DrawCurvesEachEpoch = false }
            .Fit(wrong, validation, resume: true);
        Assert.Equal(5, resumed.History.Count);
        Assert.True(resumed.History[^1].ValAccuracy >= 0.9, $"the resumed student scored {resumed.History[^1].ValAccuracy}");
        log = File.ReadAllText(Path.Combine(dir.Path, "taught", "log.txt"));
        Assert.Contains($"teacher targets for {wrong.Count} faces read from", log);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(log, "teacher targets for .* faces in "));
        // The preset's distilled stage runs in bfloat16 passes when the run asks for them; a new run with the same
        // teachers and faces reads the first run's targets from the shared folder.
        var low = new Trainer(student with { Precision = TrainingPrecision.BFloat16 }, Path.Combine(dir.Path, "taught-bf16")) { DrawCurvesEachEpoch = false, TeacherTargetsCacheDirectory = shared }
            .Fit(wrong, validation);
        Assert.True(low.BestMonitored >= 0.9, $"the offline-distilled student in bfloat16 passes scored {low.BestMonitored}");
        var lowLog = File.ReadAllText(Path.Combine(dir.Path, "taught-bf16", "log.txt"));
        Assert.Contains("computed by an earlier run from the same teachers and faces", lowLog, StringComparison.Ordinal);
        Assert.DoesNotMatch("teacher targets for .* faces in ", lowLog);
        Assert.Single(Directory.GetFiles(shared));

        var noTeacher = Assert.Throws<ArgumentException>(() => (student with { Teacher = null }).Validate());
        Assert.Contains("--distill-offline needs --teacher", noTeacher.Message);
        Assert.Throws<ArgumentException>(() => (student with { Teacher = " , " }).Validate());
    }

    [Fact]
    public void Saved_teacher_targets_come_back_only_for_the_same_teachers_and_faces()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        var path = TeacherTargetsCache.PathIn(dir.Path);
        var faces = new byte[] { 1, 2, 3, 4, 5, 6 };
        var targets = rand(3, 7, generator: new Generator().manual_seed(5));
        var cache = new TeacherTargetsCache(path, "aaaa+bbbb:flip", faces);
        Assert.Null(cache.TryLoad(3, 7, out var why));
        Assert.Equal("none saved", why);

        cache.Save(targets);
        var loaded = cache.TryLoad(3, 7, out _);
        Assert.NotNull(loaded);
        Assert.True(loaded.eq(targets).all().item<bool>(), "the targets come back bit for bit");

        Assert.Null(new TeacherTargetsCache(path, "aaaa+bbbb", faces).TryLoad(3, 7, out why));
        Assert.Contains("other teachers", why);
        Assert.Null(new TeacherTargetsCache(path, "aaaa+bbbb:flip", new byte[] { 1, 2, 3, 4, 5, 7 }).TryLoad(3, 7, out why));
        Assert.Contains("other training faces", why);
        Assert.Null(cache.TryLoad(4, 7, out why));
        Assert.Contains("3x7 targets, 4x7 needed", why);

        // In a folder shared by runs each teachers-and-faces pair has its own file.
        var shared = cache.SharedIn(Path.Combine(dir.Path, "shared"));
        shared.Save(targets);
        Assert.NotNull(shared.TryLoad(3, 7, out _));
        Assert.NotEqual(shared.FilePath, new TeacherTargetsCache(path, "aaaa+bbbb", faces).SharedIn(Path.Combine(dir.Path, "shared")).FilePath);
        Assert.Equal(shared.FilePath, new TeacherTargetsCache(path, "aaaa+bbbb:flip", faces).SharedIn(Path.Combine(dir.Path, "shared")).FilePath);

        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]);
        Assert.Null(cache.TryLoad(3, 7, out why));
        Assert.Contains("unreadable", why);
        File.WriteAllBytes(path, [.. bytes, 0]);
        Assert.Null(cache.TryLoad(3, 7, out why));
        Assert.Contains("longer than its targets", why);
        File.WriteAllText(path, "not this");
        Assert.Null(cache.TryLoad(3, 7, out why));
        File.WriteAllBytes(path, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]); // a string length no writer makes
        Assert.Null(cache.TryLoad(3, 7, out why));
        Assert.Contains("unreadable", why);
    }

    [Fact]
    public void Distillation_loss_is_the_label_loss_at_weight_0_and_flat_where_the_student_matches_the_teacher()
    {
        using var scope = NewDisposeScope();
        var logits = randn(5, 7, generator: new Generator().manual_seed(3)).requires_grad_();
        var teacherLogits = randn(5, 7, generator: new Generator().manual_seed(4));
        var target = nn.functional.one_hot(tensor(new long[] { 0, 1, 2, 3, 4 }), 7).to(ScalarType.Float32);
        Assert.Equal(Trainer.SoftCrossEntropy(logits, target).item<float>(),
            Trainer.DistillationLoss(logits, target, teacherLogits, 0, 4).item<float>(), 5);

        var matching = teacherLogits.clone().requires_grad_();
        var atMinimum = Trainer.DistillationLoss(matching, target, teacherLogits, 1, 4);
        Assert.Equal(0, atMinimum.item<float>(), 5);
        atMinimum.backward();
        Assert.True(matching.grad!.abs().max().item<float>() < 1e-6, "the soft term should be at its minimum where student = teacher");
        Trainer.DistillationLoss(logits, target, teacherLogits, 1, 4).backward();
        Assert.True(logits.grad!.abs().max().item<float>() > 1e-3, "a student unlike its teacher should get a gradient");
    }

    [Fact]
    public void A_run_folder_being_trained_is_refused_to_a_second_trainer_until_the_first_lets_go()
    {
        using var dir = new TempDir();
        var train = Synthetic.Patterns(24, seed: 1);
        var validation = Synthetic.Patterns(8, seed: 2, split: DataSplit.PublicTest);
        var runDir = Path.Combine(dir.Path, "run");

        // Within one process: a second trainer of the folder, or a chain over it, gets the holder's pid.
        using (RunLock.Acquire(runDir))
        {
            var held = Assert.Throws<RunLockedException>(() => new Trainer(Quick(1), runDir) { DrawCurvesEachEpoch = false }.Fit(train, validation, resume: true));
            Assert.Contains($"{runDir} is being trained by another process (pid {Environment.ProcessId}, started ", held.Message);
            Assert.Contains($"kill -TERM {Environment.ProcessId}", held.Message);
            Assert.Throws<RunLockedException>(() => new TrainingChain([Quick(1)], runDir).Fit(train, validation));
            Assert.Throws<RunLockedException>(() => RunLock.ThrowIfHeld(runDir));
        }
        Assert.False(Trainer.HasRunIn(runDir), "the refused trainers wrote no checkpoint");

        // Across processes: the lock is the kernel's flock, as the flock(1) tool takes it for a stand-in
        // background run, and it ends with its holder. --no-fork: flock(1) would otherwise hand the lock to a
        // child that can outlive the killed parent for a moment.
        var lockFile = Path.Combine(runDir, RunLock.FileName);
        using var holder = Process.Start(new ProcessStartInfo("flock", ["--exclusive", "--no-fork", lockFile, "sleep", "120"]) { UseShellExecute = false })!;
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (true)
            {
                try
                {
                    RunLock.Acquire(runDir).Dispose(); // flock(1) has not taken it yet
                }
                catch (RunLockedException)
                {
                    break;
                }
                Assert.True(DateTime.UtcNow < deadline, "flock(1) never took the lock");
                Thread.Sleep(50);
            }
            Assert.Throws<RunLockedException>(() => new Trainer(Quick(1), runDir) { DrawCurvesEachEpoch = false }.Fit(train, validation));
        }
        finally
        {
            holder.Kill(entireProcessTree: true);
            holder.WaitForExit();
        }
        var trained = new Trainer(Quick(1), runDir) { DrawCurvesEachEpoch = false }.Fit(train, validation);
        Assert.Single(trained.History);
        Assert.True(Trainer.HasRunIn(runDir));
    }

    [Fact]
    public void The_run_catalog_tells_training_stopped_and_finished_runs_and_chain_stages_apart()
    {
        using var dir = new TempDir();
        var train = Synthetic.Patterns(24, seed: 1);
        var validation = Synthetic.Patterns(8, seed: 2, split: DataSplit.PublicTest);
        var runs = Path.Combine(dir.Path, "runs");
        SyncProgress<TrainingProgress> StopAfter(CancellationTokenSource cts, int epoch) =>
            new(p => { if (p.Phase == TrainingPhase.EpochCompleted && p.Epoch == epoch) cts.Cancel(); });

        // A single run stopped after epoch 1 of 2.
        var stopCts = new CancellationTokenSource();
        new Trainer(Quick(2), Path.Combine(runs, "single")) { DrawCurvesEachEpoch = false }
            .Fit(train, validation, progress: StopAfter(stopCts, 1), cancellationToken: stopCts.Token);
        // A preset's chain of two stages, finished; another stopped after the first epoch of its second stage.
        new TrainingChain([Quick(1), Quick(1)], Path.Combine(runs, "done")) { Preset = "best" }.Fit(train, validation);
        var chainCts = new CancellationTokenSource();
        var halfway = new TrainingChain([Quick(1), Quick(2)], Path.Combine(runs, "halfway")) { Preset = "realtime" };
        halfway.Fit(train, validation, runStage: (stage, trainer, resume) => trainer.Fit(train, validation, resume,
            progress: stage == 1 ? StopAfter(chainCts, 1) : null, cancellationToken: chainCts.Token));
        Directory.CreateDirectory(Path.Combine(runs, "empty")); // no run in it yet: not listed
        Directory.CreateDirectory(Path.Combine(runs, "broken", "checkpoints"));
        File.WriteAllText(Trainer.LastCheckpointIn(Path.Combine(runs, "broken")), "not a checkpoint");

        var problems = new List<string>();
        var list = RunCatalog.List(runs, problems).ToDictionary(r => r.Name);
        Assert.Contains("last.ckpt: checkpoint is corrupt or truncated", Assert.Single(problems));
        Assert.Equal(["done", "halfway", "single"], list.Keys.Order());
        var single = list["single"];
        Assert.Equal((RunState.Stopped, 1, 2, (int?)null, (int?)null), (single.State, single.EpochsDone, single.Options.Epochs, single.Stage, single.LaterStageEpochs));
        Assert.Single(single.RecentEpochSeconds);
        var done = list["done"];
        Assert.Equal((RunState.Finished, 2, 2, "best", 1), (done.State, done.Stage, done.Stages, done.Preset, done.EpochsDone));
        var half = list["halfway"];
        Assert.Equal((RunState.Stopped, 2, 2, "realtime", 1, 2, 0), (half.State, half.Stage, half.Stages, half.Preset, half.EpochsDone, half.Options.Epochs, half.LaterStageEpochs));
        var stageSeconds = new[] { 0, 1 }.Sum(s => TrainingHistory.FromCsv(Path.Combine(halfway.StageDirectory(s), "history.csv")).Sum(e => e.Seconds));
        // history.csv rounds each epoch's seconds, so compare within a tolerance: rounding both sides to one
        // decimal failed once when they straddled a rounding boundary (2.5499 against 2.5496).
        Assert.Equal(stageSeconds, half.Seconds, tolerance: 0.05);
        Assert.Null(RunCatalog.Inspect(Path.Combine(runs, "empty")));
        Assert.Throws<DirectoryNotFoundException>(() => RunCatalog.List(Path.Combine(dir.Path, "absent")));

        // While a process holds a run's lock, the catalog says so, in that process and in another (fer runs).
        using (RunLock.Acquire(Path.Combine(runs, "single")))
        {
            var training = RunCatalog.Inspect(Path.Combine(runs, "single"))!;
            Assert.Equal((RunState.Training, Environment.ProcessId), (training.State, training.ProcessId));
            var cli = Cli.Run("runs", "--runs-dir", runs);
            Assert.True(cli.ExitCode == 0, cli.Stderr + cli.Stdout);
            Assert.Contains($"training, pid {Environment.ProcessId}", cli.Stdout);
            Assert.Contains($"continue halfway: fer train --preset realtime --name halfway --runs-dir {runs} --resume", cli.Stdout);
            Assert.DoesNotContain("continue single", cli.Stdout);
            Assert.DoesNotContain("continue done", cli.Stdout);
        }
        Assert.Equal(RunState.Stopped, RunCatalog.Inspect(Path.Combine(runs, "single"))!.State);
        var json = Cli.Run("runs", "--runs-dir", runs, "--json");
        Assert.True(json.ExitCode == 0, json.Stderr + json.Stdout);
        Assert.Contains("fer runs: skipped: ", json.Stderr);
        using var doc = System.Text.Json.JsonDocument.Parse(json.Stdout);
        var byName = doc.RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!);
        Assert.Equal("Stopped", byName["single"].GetProperty("state").GetString());
        Assert.Equal(2, byName["done"].GetProperty("stages").GetInt32());
        Assert.Contains("--resume", byName["single"].GetProperty("resume").GetString());
    }

    [Fact]
    public void A_chain_starts_each_stage_from_the_previous_best_package_and_resumes_where_it_stopped()
    {
        using var dir = new TempDir();
        var train = Synthetic.Patterns(24, seed: 1);
        var validation = Synthetic.Patterns(8, seed: 2, split: DataSplit.PublicTest);
        // Stage 2 cannot learn anything at this rate: it scores well only if it starts from stage 1's weights.
        var still = Quick(1) with { Optimizer = OptimizerKind.Sgd, LearningRate = 1e-7, Momentum = 0 };
        var chain = new TrainingChain([Quick(4) with { Standardize = true }, still], Path.Combine(dir.Path, "chain"));
        var results = chain.Fit(train, validation);
        Assert.Equal(2, results.Count);
        Assert.True(results[0].BestMonitored >= 0.9, $"stage 1 scored {results[0].BestMonitored}");
        Assert.True(results[1].History[0].ValAccuracy >= 0.9, $"stage 2 scored {results[1].History[0].ValAccuracy}");
        Assert.Equal(Path.Combine(chain.StageDirectory(1), "model"), chain.ModelPath);
        Assert.Equal(results[1].ModelPath, chain.ModelPath);
        using (var final = EmotionModel.Load(chain.ModelPath))
        {
            Assert.Equal(Path.Combine(chain.StageDirectory(0), "model"), final.Metadata.TrainOptions()!.InitFrom);
        }

        // Resuming a finished chain trains nothing; a third stage added later starts from the second, and may
        // distil from earlier stages' packages, named by stage.
        var again = chain.Fit(train, validation, resume: true);
        Assert.Equal(results.Select(r => r.History.Count), again.Select(r => r.History.Count));
        var distilled = still with { Teacher = $"{TrainingChain.StageTeacher(1)},{TrainingChain.StageTeacher(2)}", DistillOffline = true };
        var longer = new TrainingChain([Quick(4) with { Standardize = true }, still, distilled], chain.RunDirectory).Fit(train, validation, resume: true);
        Assert.Equal([4, 1, 1], longer.Select(r => r.History.Count));
        var stage3Log = File.ReadAllText(Path.Combine(chain.RunDirectory, "stage3", "log.txt"));
        Assert.Contains("initial weights from " + Path.Combine(chain.StageDirectory(1), "model"), stage3Log);
        Assert.Contains("teacher " + Path.Combine(chain.StageDirectory(0), "model"), stage3Log);
        Assert.Contains("teacher " + Path.Combine(chain.StageDirectory(1), "model"), stage3Log);
        var later = Assert.Throws<ArgumentException>(() => new TrainingChain([still, still with { Teacher = TrainingChain.StageTeacher(2) }], Path.Combine(dir.Path, "later")));
        Assert.Contains("must name an earlier stage", later.Message);
        var alone = Assert.Throws<ArgumentException>(() => new Trainer(still with { Teacher = TrainingChain.StageTeacher(1) }, Path.Combine(dir.Path, "alone")).Fit(train, validation));
        Assert.Contains("exists only when the preset runs all its stages", alone.Message);
        Assert.Throws<IOException>(() => chain.Fit(train, validation));
        var single = new Trainer(Quick(1), Path.Combine(dir.Path, "single")) { DrawCurvesEachEpoch = false };
        single.Fit(train, validation);
        var ex = Assert.Throws<IOException>(() => new TrainingChain([Quick(1)], single.RunDirectory).Fit(train, validation, resume: true));
        Assert.Contains("single run", ex.Message);

        // A single run stopped in its first epoch has only a mid-epoch checkpoint, and is still not a chain.
        var cts = new CancellationTokenSource();
        var stopped = new Trainer(Quick(1), Path.Combine(dir.Path, "stopped")) { DrawCurvesEachEpoch = false }.Fit(train, validation,
            progress: new SyncProgress<TrainingProgress>(p => { if (p.Phase == TrainingPhase.Batch) cts.Cancel(); }), cancellationToken: cts.Token);
        Assert.True(stopped.SavedMidEpoch && stopped.History.Count == 0);
        ex = Assert.Throws<IOException>(() => new TrainingChain([Quick(1)], Path.Combine(dir.Path, "stopped")).Fit(train, validation, resume: true));
        Assert.Contains("single run", ex.Message);
    }

    [Fact]
    public void A_chains_later_stages_count_in_epochs_of_the_current_stage_with_a_final_fits_extra_faces()
    {
        // --preset best: 80, 40 and 40 epochs on Training, then 40 and four times 20 on Training + PublicTest,
        // then 12 on Training (the fine-tune on the original pixels), then 9 on Training + PublicTest.
        var chain = new TrainingChain(TrainPresets.Get("best").Stages, Path.Combine(Path.GetTempPath(), "unused"));
        const int train = 28_709, publicTest = 3_589;
        Assert.Equal(40 + 40 + 129 * (train + publicTest) / (double)train + 12, chain.LaterStagesInEpochsOf(0, train, publicTest), 9);
        Assert.Equal(129 * (train + publicTest) / (double)train + 12, chain.LaterStagesInEpochsOf(2, train, publicTest), 9);
        // A final fit timing the final fits after it, and the fine-tune's smaller epochs.
        Assert.Equal(89 + 12 * train / (double)(train + publicTest), chain.LaterStagesInEpochsOf(3, train, publicTest), 9);
        Assert.Equal(0, chain.LaterStagesInEpochsOf(chain.StageCount - 1, train, publicTest));
        Assert.Throws<ArgumentOutOfRangeException>(() => chain.LaterStagesInEpochsOf(chain.StageCount, train, publicTest));
    }

    [Fact]
    public void Every_preset_ends_with_the_recipe_of_its_shipped_package()
    {
        var models = Inference.ModelCatalog.ModelsDirectory() ?? throw new DirectoryNotFoundException("models/ not found");
        // Preset NAME reproduces models/fer2013-NAME; a preset without its package fails here.
        foreach (var preset in TrainPresets.List)
        {
            var package = "fer2013-" + preset.Name;
            using var shipped = EmotionModel.Load(Path.Combine(models, package));
            var stages = preset.Stages;
            var trained = shipped.Metadata.TrainOptions()!;
            // A stage taught by earlier stages names them by number; the shipped run named their packages, one
            // for each (docs/BENCHMARKS.md ties the packages to the stages).
            var byStage = stages[^1].TeacherPaths.Any(TrainingChain.IsStageTeacher);
            Assert.Equal(trained with { InitFrom = null, Teacher = byStage ? null : trained.Teacher }, stages[^1] with { Teacher = byStage ? null : stages[^1].Teacher });
            Assert.Equal(stages[^1].TeacherPaths.Count, trained.TeacherPaths.Count);
            Assert.Equal(stages.Count > 1, trained.InitFrom != null);
            Assert.True(shipped.Metadata.Epochs <= stages[^1].Epochs, $"{package} trained more epochs than its preset");
            _ = new TrainingChain(stages, Path.Combine(Path.GetTempPath(), "unused")); // stage teachers name earlier stages
            // Teachers are paths from the repository root: renaming a shipped package must not orphan them.
            foreach (var teacher in stages.SelectMany(s => s.TeacherPaths).Where(t => !TrainingChain.IsStageTeacher(t)))
            {
                Assert.True(File.Exists(Path.Combine(Path.GetDirectoryName(models)!, teacher, "model.json")), $"preset {preset.Name}: teacher {teacher} is not a shipped package");
            }
        }
        var ex = Assert.Throws<ArgumentException>(() => TrainPresets.Get("fastest"));
        Assert.Contains("best", ex.Message);
    }

    [Fact]
    public void Training_on_the_validation_faces_learns_from_them_and_keeps_the_last_epoch()
    {
        using var dir = new TempDir();
        var train = Synthetic.Patterns(6);
        var validation = Synthetic.Patterns(3, seed: 2, split: DataSplit.PublicTest);
        // A rate this small cannot change predictions, so a monitored run would keep epoch 1.
        var options = Quick(3) with { LearningRate = 1e-12, TrainOnValidation = true };
        var trainer = new Trainer(options, Path.Combine(dir.Path, "run")) { DrawCurvesEachEpoch = false };
        var result = trainer.Fit(train, validation);
        Assert.Equal(3, result.BestEpoch);
        using var package = EmotionModel.Load(result.ModelPath);
        Assert.Equal(train.Count + validation.Count, package.Metadata.Dataset!.Count);
        Assert.True(package.Metadata.TrainOptions()!.TrainOnValidation);
        Assert.Contains("validation accuracy is not held out", File.ReadAllText(trainer.LogPath));
        Assert.Equal(["Training", "PublicTest"], package.Metadata.Dataset.Splits!);
        Assert.True(package.Metadata.TrainedOn(DataSplit.PublicTest));
        Assert.False(package.Metadata.TrainedOn(DataSplit.PrivateTest));
        // Reports on faces the model trained on say so.
        Assert.Contains(Evaluator.Evaluate(package, validation).Notes, n => n.Contains("trained on PublicTest faces", StringComparison.Ordinal));
        Assert.DoesNotContain(Evaluator.Evaluate(package, Synthetic.Patterns(1, split: DataSplit.PrivateTest)).Notes, n => n.Contains("trained on", StringComparison.Ordinal));
        // Packages from before the splits were recorded: Training, and PublicTest when trained on validation faces.
        var legacy = package.Metadata with { Dataset = package.Metadata.Dataset with { Splits = null } };
        Assert.True(legacy.TrainedOn(DataSplit.PublicTest));
        Assert.False((legacy with { Training = (options with { TrainOnValidation = false }).ToJson() }).TrainedOn(DataSplit.PublicTest));
        Assert.True(legacy.TrainedOn(DataSplit.Training));

        // Nothing may steer by accuracy on faces the network trains on.
        Assert.Throws<ArgumentException>(() => (options with { Schedule = LrScheduleKind.Plateau }).Validate());
        Assert.Throws<ArgumentException>(() => (options with { EarlyStoppingPatience = 3 }).Validate());
    }

    [Fact]
    public void Joined_datasets_keep_every_face_in_order_and_refuse_other_classes()
    {
        var first = Synthetic.Patterns(2);
        var second = Synthetic.Patterns(1, seed: 3, split: DataSplit.PublicTest);
        var joined = first.Concat(second);
        Assert.Equal(first.Count + second.Count, joined.Count);
        Assert.Equal(first.Labels.Concat(second.Labels), joined.Labels);
        Assert.Equal(first.Splits.Concat(second.Splits), joined.Splits);
        Assert.True(joined.Face(first.Count).SequenceEqual(second.Face(0)));
        Assert.True(joined.Face(first.Count - 1).SequenceEqual(first.Face(first.Count - 1)));
        var twoClasses = new FaceDataset(["yes", "no"], new byte[2 * FaceDataset.PixelsPerImage], [0, 1], [DataSplit.Training, DataSplit.Training]);
        Assert.Throws<ArgumentException>(() => first.Concat(twoClasses));
    }

    [Fact]
    public void Early_stopping_stops_when_the_monitored_metric_stalls()
    {
        using var dir = new TempDir();
        // A learning rate this small cannot change predictions, so validation accuracy never improves.
        var options = Quick(20) with { LearningRate = 1e-12, EarlyStoppingPatience = 2 };
        var result = new Trainer(options, Path.Combine(dir.Path, "run")) { DrawCurvesEachEpoch = false }
            .Fit(Synthetic.Patterns(6), Synthetic.Patterns(3, split: DataSplit.PublicTest));
        Assert.True(result.StoppedEarly);
        Assert.Equal(3, result.History.Count);
        Assert.Equal(1, result.BestEpoch);
    }

    [Fact]
    public void A_checkpoint_write_that_dies_midway_leaves_the_previous_checkpoint_intact()
    {
        using var dir = new TempDir();
        var path = dir.File("last.ckpt");
        var state = new TrainingState
        {
            Options = Quick(1),
            History = [],
            Schedule = new LrScheduleState(),
            Normalization = new Normalization(),
            ClassNames = EmotionClasses.Fer2013,
            Epoch = 5,
            BestMonitored = double.NaN,
        };
        Checkpoint.Save(path, state, [1, 2, 3], null, [4, 5]);
        var good = File.ReadAllBytes(path);

        Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[1000]);
            throw new IOException("disk full (simulated crash mid-write)");
        }));
        Assert.Equal(good, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path)); // no temp file left behind
        var (loaded, model, ema, optimizer) = Checkpoint.Load(path);
        Assert.Equal(5, loaded.Epoch);
        Assert.Equal(new byte[] { 1, 2, 3 }, model);
        Assert.Null(ema);
        Assert.Equal(new byte[] { 4, 5 }, optimizer);

        File.WriteAllBytes(path, good[..(good.Length / 2)]);
        Assert.Contains("corrupt or truncated", Assert.Throws<InvalidDataException>(() => Checkpoint.Load(path)).Message);
    }
}

public class ModelPackageTests
{
    [Fact]
    public void Missing_corrupt_or_mismatched_packages_fail_clearly()
    {
        using var dir = new TempDir();
        Assert.Contains("no such model package", Assert.Throws<FileNotFoundException>(() => EmotionModel.Load(dir.File("nothing"))).Message);
        Assert.Contains("no model.json", Assert.Throws<FileNotFoundException>(() => EmotionModel.Load(dir.Path)).Message);

        var metadata = new ModelMetadata { Name = "t", Architecture = "seed-cnn", ClassNames = EmotionClasses.Fer2013 };
        using (var model = new EmotionModel(metadata, ModelRegistry.Create("seed-cnn", 7)))
        {
            model.Save(dir.Path);
        }
        using (EmotionModel.Load(dir.Path)) { }

        var weights = dir.File("model.onnx");
        var bytes = File.ReadAllBytes(weights);
        bytes[^10] ^= 0xff;
        File.WriteAllBytes(weights, bytes);
        Assert.Contains("checksum", Assert.Throws<InvalidDataException>(() => EmotionModel.Load(dir.Path)).Message);

        var json = File.ReadAllText(dir.File("model.json"));
        File.WriteAllText(dir.File("model.json"), json.Replace("\"seed-cnn\"", "\"vgg-bn\"", StringComparison.Ordinal)
            .Replace("\"weights_sha256\"", "\"ignored\"", StringComparison.Ordinal));
        Assert.Contains("do not fit architecture 'vgg-bn'", Assert.Throws<InvalidDataException>(() => EmotionModel.Load(dir.Path)).Message);

        File.WriteAllText(dir.File("model.json"), "{ not json");
        Assert.Contains("not a valid model.json", Assert.Throws<InvalidDataException>(() => EmotionModel.Load(dir.Path)).Message);
    }
}

public class AugmentationTests
{
    private static Tensor Batch(int seed)
    {
        using var g = new Generator().manual_seed(seed);
        return rand([6, 1, 48, 48], generator: g);
    }

    [Fact]
    public void Flip_twice_is_identity()
    {
        using var x = Batch(1);
        using var once = Augmentation.HorizontalFlip(x);
        using var twice = Augmentation.HorizontalFlip(once);
        Assert.False(once.allclose(x));
        Assert.True(twice.allclose(x, rtol: 0, atol: 0));
    }

    [Fact]
    public void Zero_rotation_zoom_and_shift_is_identity_within_tolerance()
    {
        using var x = Batch(2);
        using var g = new Generator().manual_seed(1);
        using var y = Augmentation.Apply(x, new AugmentOptions { RotateDegrees = 0, Zoom = 0, Shift = 0 }, g);
        Assert.True(y.allclose(x, atol: 1e-5));
    }

    [Fact]
    public void Always_flipping_equals_the_mirror_image()
    {
        // flip=1 in the affine path flips about half the batch; check each image is either itself or its mirror.
        using var x = Batch(3);
        using var g = new Generator().manual_seed(5);
        using var y = Augmentation.Apply(x, new AugmentOptions { Flip = true }, g);
        using var mirror = Augmentation.HorizontalFlip(x);
        var flipped = 0;
        for (var i = 0; i < 6; i++)
        {
            var same = y[i].allclose(x[i], atol: 1e-5);
            var mirrored = y[i].allclose(mirror[i], atol: 1e-5);
            Assert.True(same ^ mirrored, $"image {i} is neither unchanged nor mirrored");
            if (mirrored) flipped++;
        }
        Assert.InRange(flipped, 1, 5);
    }

    [Fact]
    public void Shapes_and_value_range_are_preserved_and_seeds_reproduce()
    {
        using var x = Batch(4);
        var options = AugmentOptions.Parse("rotate=20,zoom=0.2,shift=0.1,flip,erase=1");
        using var g1 = new Generator().manual_seed(9);
        using var g2 = new Generator().manual_seed(9);
        using var a = Augmentation.Apply(x, options, g1);
        using var b = Augmentation.Apply(x, options, g2);
        Assert.Equal(x.shape, a.shape);
        Assert.True(a.min().item<float>() >= 0 && a.max().item<float>() <= 1);
        Assert.True(a.allclose(b, rtol: 0, atol: 0));
        Assert.False(a.allclose(x));
    }

    [Fact]
    public void Parse_round_trips_and_rejects_unknown_options()
    {
        var options = AugmentOptions.Parse("rotate=15, zoom=0.1,flip,shift=0.1");
        Assert.Equal("rotate=15,zoom=0.1,shift=0.1,flip", options.ToString());
        Assert.Equal(options, AugmentOptions.Parse(options.ToString()));
        Assert.True(AugmentOptions.Parse("none").IsIdentity);
        var mixing = AugmentOptions.Parse("flip,mixup=0.2,cutmix=1");
        Assert.Equal("flip,mixup=0.2,cutmix=1", mixing.ToString());
        Assert.True(AugmentOptions.Parse("mixup=0.4").MixesBatch);
        Assert.False(AugmentOptions.Parse("mixup=0.4").HasImageTransforms);
        Assert.Contains("unknown augment option 'sharpen", Assert.Throws<ArgumentException>(() => AugmentOptions.Parse("sharpen=2")).Message);
        Assert.Contains("non-negative", Assert.Throws<ArgumentException>(() => AugmentOptions.Parse("rotate=-3")).Message);
    }
}

public class BatchMixingTests
{
    // Image i is the constant (i + 1) / 10 and its target is class i one-hot, so every mixed pixel and
    // target can be traced back to the two images it came from.
    private static (Tensor Images, Tensor Targets) Constants(int batch)
    {
        var images = arange(1, batch + 1, dtype: ScalarType.Float32).div(10).view(batch, 1, 1, 1).expand(batch, 1, 48, 48).contiguous();
        var targets = nn.functional.one_hot(arange(batch, dtype: ScalarType.Int64), batch).to(ScalarType.Float32);
        return (images, targets);
    }

    [Fact]
    public void Mixup_blends_images_and_targets_in_the_same_proportion()
    {
        var (images, targets) = Constants(6);
        var (mixed, mixedTargets, lambda) = BatchMixing.Apply(images, targets, AugmentOptions.Parse("mixup=0.4"), new Random(3));
        Assert.InRange(lambda, 0, 1);
        Assert.True(mixedTargets.sum(1).allclose(ones(6), atol: 1e-6));
        // Each mixed image is constant and equals the target-weighted mean of the source constants.
        var expected = mixedTargets.matmul(arange(1, 7, dtype: ScalarType.Float32).div(10));
        Assert.True(mixed.view(6, -1).amin(1).allclose(expected, atol: 1e-5));
        Assert.True(mixed.view(6, -1).amax(1).allclose(expected, atol: 1e-5));
        Assert.Equal(0.35f, images.mean().item<float>(), 5); // inputs untouched
    }

    [Fact]
    public void Cutmix_label_share_equals_the_share_of_pasted_pixels()
    {
        var (images, targets) = Constants(8);
        var random = new Random(5);
        for (var trial = 0; trial < 5; trial++)
        {
            var (mixed, mixedTargets, lambda) = BatchMixing.Apply(images, targets, AugmentOptions.Parse("cutmix=1"), random);
            for (var i = 0; i < 8; i++)
            {
                var own = (i + 1) / 10f;
                var ownShare = mixed[i].eq(own).to(ScalarType.Float32).mean().item<float>();
                var partnerIsSelf = mixedTargets[i, i].item<float>() > 0.9999f;
                if (!partnerIsSelf)
                {
                    Assert.Equal(lambda, ownShare, 5);
                    Assert.Equal(lambda, mixedTargets[i, i].item<float>(), 5);
                }
            }
            Assert.True(mixedTargets.sum(1).allclose(ones(8), atol: 1e-6));
        }
    }

    [Fact]
    public void Beta_samples_lie_in_the_unit_interval_with_mean_one_half()
    {
        var random = new Random(11);
        foreach (var alpha in new[] { 0.2, 1.0, 2.0 })
        {
            var samples = Enumerable.Range(0, 4000).Select(_ => BatchMixing.SampleBeta(random, alpha)).ToArray();
            Assert.All(samples, x => Assert.InRange(x, 0, 1));
            Assert.InRange(samples.Average(), 0.48, 0.52);
            // Var(Beta(a, a)) = 1 / (4 (2a + 1)): small alpha pushes samples to the ends.
            var variance = samples.Select(x => (x - 0.5) * (x - 0.5)).Average();
            var expected = 1 / (4 * (2 * alpha + 1));
            Assert.InRange(variance, expected * 0.9, expected * 1.1);
        }
    }
}

public class LrScheduleTests
{
    [Fact]
    public void Warmup_cosine_and_plateau_follow_their_definitions()
    {
        var cosine = new TrainOptions { LearningRate = 0.1, Epochs = 10, WarmupEpochs = 2, Schedule = LrScheduleKind.Cosine, MinLearningRate = 0 };
        Assert.Equal(0.05, LrSchedule.At(cosine, new LrScheduleState(), 1), 9);
        Assert.Equal(0.1, LrSchedule.At(cosine, new LrScheduleState(), 2), 9);
        Assert.Equal(0.05, LrSchedule.At(cosine, new LrScheduleState(), 6), 9);
        Assert.Equal(0, LrSchedule.At(cosine, new LrScheduleState(), 10), 9);

        var plateau = new TrainOptions { LearningRate = 0.1, Schedule = LrScheduleKind.Plateau, PlateauPatience = 1, PlateauFactor = 0.5 };
        var state = new LrScheduleState();
        foreach (var acc in new[] { 0.5, 0.6, 0.6, 0.6 }) state = LrSchedule.AfterEpoch(plateau, state, acc);
        Assert.Equal(0.05, LrSchedule.At(plateau, state, 4), 9);
    }

    [Fact]
    public void Warm_restarts_start_new_cosine_cycles_and_leave_the_first_cycle_unchanged()
    {
        var single = new TrainOptions { LearningRate = 0.1, Epochs = 10, WarmupEpochs = 2, Schedule = LrScheduleKind.Cosine, MinLearningRate = 0 };
        var restarted = single with { Epochs = 20, RestartAt = "10", RestartLrFactor = 0.5 };
        restarted.Validate();
        var fresh = new LrScheduleState();
        Assert.True(LrSchedule.SameUpTo(single, restarted, 10), "the first cycle must be the original 10-epoch schedule");
        Assert.False(LrSchedule.SameUpTo(single, restarted, 11));
        Assert.Equal(0.025, LrSchedule.At(restarted, fresh, 11), 9); // half-way through the second cycle's warm-up
        Assert.Equal(0.05, LrSchedule.At(restarted, fresh, 12), 9);  // second peak = 0.1 * 0.5
        Assert.Equal(0.025, LrSchedule.At(restarted, fresh, 16), 9); // cosine mid-point of epochs 12..20
        Assert.Equal(0, LrSchedule.At(restarted, fresh, 20), 9);

        Assert.Throws<ArgumentException>(() => (single with { RestartAt = "10" }).Validate());       // not before the last epoch
        Assert.Throws<ArgumentException>(() => (restarted with { RestartAt = "1" }).Validate());     // cycle shorter than warm-up
        Assert.Throws<ArgumentException>(() => (restarted with { RestartAt = "ten" }).Validate());
        Assert.Empty((restarted with { RestartAt = "none" }).RestartEpochs);
        Assert.Throws<ArgumentException>(() => (restarted with { Schedule = LrScheduleKind.Plateau }).Validate());
    }
}

public class ArchitectureTests
{
    [Theory]
    [InlineData("seed-cnn")]
    [InlineData("vgg-bn")]
    [InlineData("vgg-wide")]
    [InlineData("resnet-small")]
    [InlineData("mini-xception")]
    [InlineData("fast-cnn")]
    [InlineData("fast-cnn-slim")]
    public void Every_architecture_maps_a_batch_of_faces_to_class_logits(string name)
    {
        using var scope = NewDisposeScope();
        using var model = ModelRegistry.Create(name, 8);
        model.eval();
        var y = model.forward(zeros(3, 1, 48, 48));
        Assert.Equal(new long[] { 3, 8 }, y.shape);
        // Fewer than two classes is refused by name, not left to fail inside libtorch.
        Assert.Contains("2 classes", Assert.Throws<ArgumentOutOfRangeException>(() => ModelRegistry.Create(name, 1)).Message);
    }

    [Fact]
    public void Seed_cnn_has_the_seed_layer_list()
    {
        using var model = ModelRegistry.Create("seed-cnn", 7);
        var profile = ModelProfiler.Profile(model);
        var convs = profile.Layers.Where(l => l.Type == "Conv2d").Select(l => l.OutputShape[1]).ToArray();
        Assert.Equal(new long[] { 32, 64, 128, 128 }, convs);
        Assert.Equal(3, profile.Layers.Count(l => l.Type == "MaxPool2d"));
        Assert.Equal(3, profile.Layers.Count(l => l.Type == "Dropout"));
        Assert.Equal(new long[] { 1024, 7 }, profile.Layers.Where(l => l.Type == "Linear").Select(l => l.OutputShape[1]));
        Assert.Equal(2_345_607, profile.Parameters);
    }
}

public class FoldedNetworkTests
{
    /// <summary>A network of the architecture with random weights and batch norms far from their 1/0 start.</summary>
    internal static nn.Module<Tensor, Tensor> Randomized(string name, long seed, int classes = 7)
    {
        var network = ModelRegistry.Create(name, classes);
        using var generator = new Generator((ulong)seed);
        SeededLayers.ResetParameters(network, generator);
        using (no_grad())
        {
            foreach (var norm in network.modules().OfType<TorchSharp.Modules.BatchNorm>())
            {
                norm.weight!.uniform_(0.5, 2.0, generator);
                norm.bias!.uniform_(-0.5, 0.5, generator);
                norm.running_mean!.uniform_(-0.3, 0.3, generator);
                norm.running_var!.uniform_(0.2, 3.0, generator);
            }
        }
        network.eval();
        return network;
    }

    [Theory]
    [InlineData("seed-cnn", 0)]
    [InlineData("vgg-bn", 9)]      // eight convolutions and fc1
    [InlineData("vgg-wide", 9)]
    [InlineData("resnet-small", 1)] // the stem; the residual blocks run as they are
    [InlineData("mini-xception", 2)]
    [InlineData("fast-cnn", 4)]
    [InlineData("fast-cnn-slim", 4)]
    public void Folding_batch_norms_leaves_every_architectures_outputs_unchanged(string name, int expectedFolds)
    {
        using var scope = NewDisposeScope();
        using var network = Randomized(name, 11);
        using var folded = FoldedNetwork.TryCreate(network);
        Assert.NotNull(folded);
        Assert.Equal(expectedFolds, folded.FoldedBatchNorms);
        using var generator = new Generator(5);
        var input = randn([4, 1, 48, 48], generator: generator);
        var before = input.clone();
        using var noGrad = no_grad();
        var expected = network.forward(input);
        var actual = folded.Forward(input);
        Assert.Equal(expected.shape, actual.shape);
        var worst = (expected - actual).abs().max().item<float>();
        var magnitude = expected.abs().max().item<float>();
        Assert.True(worst <= 1e-4f * Math.Max(1f, magnitude), $"{name}: folded output differs by {worst} (outputs up to {magnitude})");
        Assert.True(input.allclose(before, rtol: 0, atol: 0), "the caller's input was modified");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // Flatten first: a view of the input, still the caller's memory
    public void A_relu_never_works_in_place_on_the_callers_input(bool flattenFirst)
    {
        using var scope = NewDisposeScope();
        using var network = flattenFirst
            ? nn.Sequential(("flatten", nn.Flatten()), ("relu", nn.ReLU()), ("fc", nn.Linear(4, 2)))
            : nn.Sequential(("relu", nn.ReLU()), ("fc", nn.Linear(4, 2)));
        network.eval();
        using var folded = FoldedNetwork.TryCreate(network)!;
        var input = tensor(new float[] { -1, 2, -3, 4 }).reshape(1, 4);
        var output = folded.Forward(input);
        Assert.Equal(new float[] { -1, 2, -3, 4 }, input.data<float>().ToArray());
        Assert.True(output.allclose(network.forward(input)));
    }

    internal static Tensor RandomFaces(int count, ulong seed)
    {
        using var generator = new Generator(seed);
        return randint(0, 256, [count, 1, 48, 48], dtype: ScalarType.Byte, generator: generator);
    }

    private static EmotionModel UntrainedFastCnn(long seed) =>
        new(new ModelMetadata { Name = "t", Architecture = "fast-cnn", ClassNames = EmotionClasses.Fer2013 }, Randomized("fast-cnn", seed));

    [Fact]
    public void A_model_that_has_predicted_still_saves_its_original_weights()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        using var faces = RandomFaces(5, seed: 3);
        using var model = UntrainedFastCnn(seed: 2);
        using var unfolded = nn.functional.softmax(model.Network.forward(model.Preprocess(faces)), 1);
        using var predicted = model.PredictProbabilities(faces);
        Assert.True(predicted.allclose(unfolded, rtol: 1e-4, atol: 1e-6), "folded predictions differ from the network's own");

        model.Save(dir.Path);
        using var reloaded = EmotionModel.Load(dir.Path);
        Assert.Equal(model.Network.state_dict().Keys.Order(), reloaded.Network.state_dict().Keys.Order());
        using var again = reloaded.PredictProbabilities(faces);
        Assert.True(again.allclose(predicted, rtol: 0, atol: 1e-6), "the saved package predicts differently");
    }

    [Fact]
    public void A_flip_averaging_package_predicts_the_mean_of_the_face_and_its_mirror()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        using var faces = RandomFaces(3, seed: 5);
        using var mirrored = faces.flip(3);
        using var single = UntrainedFastCnn(seed: 4);
        var expected = single.PredictProbabilities(faces).add(single.PredictProbabilities(mirrored)).div(2);
        Assert.False(single.PredictProbabilities(faces).allclose(expected, rtol: 0, atol: 1e-4), "the random network should not be mirror-symmetric already");

        single.Save(dir.Path);
        using var loaded = EmotionModel.Load(dir.Path);
        loaded.UpdateMetadata(m => m with { FlipAveraging = true });
        loaded.Save(dir.Path);
        using var averaging = EmotionModel.Load(dir.Path);
        Assert.True(averaging.Metadata.FlipAveraging);
        Assert.True(averaging.PredictProbabilities(faces).allclose(expected, rtol: 1e-4, atol: 1e-6), "not the mean of the two views");
        Assert.True(averaging.PredictProbabilities(mirrored).allclose(expected, rtol: 1e-4, atol: 1e-6), "a face and its mirror should get the same answer");
        Assert.True(averaging.PredictProbabilities(faces.narrow(0, 1, 1)).allclose(expected.narrow(0, 1, 1), rtol: 1e-4, atol: 1e-6), "batch of one");

        // Test-time augmentation leaves the mirror views to the package: same answers as the one-view network over all views.
        var data = Synthetic.Patterns(2, seed: 6);
        foreach (var mode in new[] { TtaMode.Flip, TtaMode.Crops })
        {
            var full = Evaluator.Predict(single, data, mode, batchSize: 8, spaceSize: 7);
            var halved = Evaluator.Predict(averaging, data, mode, batchSize: 8, spaceSize: 7);
            for (var i = 0; i < data.Count; i++)
            {
                Assert.All(full[i].Zip(halved[i]), pair => Assert.Equal(pair.First, pair.Second, 4));
            }
        }
    }

    [Fact]
    public void An_ensemble_scores_the_mean_of_its_models_probabilities_and_refuses_different_classes()
    {
        using var a = UntrainedFastCnn(seed: 11);
        using var b = UntrainedFastCnn(seed: 12);
        b.UpdateMetadata(m => m with { Name = "u" });
        var data = Synthetic.Patterns(3, seed: 7, split: DataSplit.PublicTest);
        var pa = Evaluator.Predict(a, data, TtaMode.Flip, batchSize: 8, spaceSize: 7);
        var pb = Evaluator.Predict(b, data, TtaMode.Flip, batchSize: 8, spaceSize: 7);
        Assert.NotEqual(pa[0], pb[0]); // two different networks, or the mean would prove nothing

        var reported = new List<int>();
        var result = Evaluator.Evaluate([a, b], data, new EvaluationOptions { Tta = TtaMode.Flip }, "PublicTest", new SyncProgress<int>(reported.Add));
        Assert.Equal("t+u", result.ModelName);
        for (var i = 0; i < data.Count; i++)
        {
            for (var c = 0; c < 7; c++) Assert.Equal((pa[i][c] + pb[i][c]) / 2, result.Probabilities[i][c], 5);
        }
        var expectedAccuracy = Enumerable.Range(0, data.Count).Count(i =>
            Array.IndexOf(result.Probabilities[i], result.Probabilities[i].Max()) == data.Labels[i]) / (double)data.Count;
        Assert.Equal(expectedAccuracy, result.Metrics.Accuracy, 9);
        Assert.Equal(data.Count, reported[^1]); // progress ends at the face count, not twice it
        Assert.True(reported.SequenceEqual(reported.Order()), "progress went backwards");

        using var other = new EmotionModel(new ModelMetadata { Name = "v", Architecture = "fast-cnn", ClassNames = EmotionClasses.FerPlus }, Randomized("fast-cnn", 13, classes: 8));
        var error = Assert.Throws<ArgumentException>(() => Evaluator.Evaluate([a, other], data));
        Assert.Contains("same classes", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>Keeps drawing from and reseeding libtorch's process-wide generator on another thread until disposed.</summary>
internal sealed class GlobalRandomNoise : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _task;

    public GlobalRandomNoise()
    {
        _task = Task.Run(() =>
        {
            var seed = 1L;
            while (!_stop.IsCancellationRequested)
            {
                using var global = torch.manual_seed(seed++);
                using var drawn = torch.rand(64);
                Thread.Sleep(1);
            }
        });
    }

    public void Dispose()
    {
        _stop.Cancel();
        _task.Wait();
        _stop.Dispose();
    }
}

public class HeldScalarsTests
{
    [Theory]
    [InlineData("1", null, true)]
    [InlineData(null, "1", true)]
    [InlineData("0", "1", false)] // DOTNET_ wins over COMPlus_, as in the runtime
    [InlineData("1", "0", true)]
    [InlineData(null, null, false)]
    [InlineData("true", null, false)] // the runtime reads a number
    public void The_minopts_check_reads_the_variables_as_the_runtime_does(string? dotnet, string? complus, bool expected)
    {
        var environment = new Dictionary<string, string?> { ["DOTNET_JITMinOpts"] = dotnet, ["COMPlus_JITMinOpts"] = complus };
        Assert.Equal(expected, HeldScalars.RuntimeKeepsTemporariesAlive(name => environment.GetValueOrDefault(name)));
    }

    [Fact]
    public void Held_scalar_arithmetic_equals_torchsharps_operators()
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(3);
        var a = rand([2, 3], generator: generator);
        var b = rand([2, 3], generator: generator);
        Assert.True(a.AddTensor(b).allclose(a + b, rtol: 0, atol: 0));
        Assert.True(a.SubScalar(0.25).allclose(a - 0.25, rtol: 0, atol: 0));
        Assert.True(a.DivScalar(3).allclose(a / 3, rtol: 0, atol: 0));
        var inPlace = a.clone();
        Assert.Same(inPlace, inPlace.AddTensorInPlace(b).DivScalarInPlace(2));
        Assert.True(inPlace.allclose((a + b) / 2, rtol: 0, atol: 0));
    }
}

internal sealed class SimulatedCrash : Exception;
