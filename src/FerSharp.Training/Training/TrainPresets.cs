namespace FerSharp.Training;

/// <summary>
/// A named recipe. Most are one run; a shipped model that was made by continuing an earlier run from its best
/// package (<see cref="TrainOptions.InitFrom"/>) is a chain of stages, each starting from the one before, so
/// that one command (and <see cref="TrainingChain"/>) repeats what produced it.
/// </summary>
public sealed record TrainPreset(string Name, string Description, IReadOnlyList<TrainOptions> Stages)
{
    /// <summary>The first stage: the options explicit command-line values override when they make it a single run.</summary>
    public TrainOptions First => Stages[0];
}

/// <summary>The recipes behind the shipped models (<c>fer train --preset NAME</c>).</summary>
public static class TrainPresets
{
    // The seed: Keras-tutorial CNN, Adam, batch 64, rotation/zoom/shift/flip; 30 epochs fit one session on 2 cores.
    private static readonly TrainOptions Seed = new()
    {
        Architecture = "seed-cnn",
        Epochs = 30,
        BatchSize = 64,
        Optimizer = OptimizerKind.Adam,
        LearningRate = 1e-3,
        Schedule = LrScheduleKind.Plateau,
        PlateauPatience = 2,
        Augment = "rotate=10,zoom=0.1,shift=0.1,flip",
        EarlyStoppingPatience = 6,
    };

    // VGG-BN, SGD+Nesterov cosine, label smoothing, erasing, EMA. Two cosine cycles (40 epochs, then a warm
    // restart for 48 at half the peak rate): each cycle fits a 3-hour session on 2 cores, and a stopped run
    // continues with --resume exactly as if it had not stopped.
    private static readonly TrainOptions VggBn = new()
    {
        Architecture = "vgg-bn",
        Epochs = 88,
        RestartAt = "40",
        RestartLrFactor = 0.5,
        BatchSize = 64,
        Optimizer = OptimizerKind.Sgd,
        LearningRate = 0.05,
        WeightDecay = 5e-4,
        Schedule = LrScheduleKind.Cosine,
        WarmupEpochs = 2,
        LabelSmoothing = 0.1,
        Augment = "rotate=12,zoom=0.12,shift=0.1,flip,erase=0.4",
        EarlyStoppingPatience = 0,
        Standardize = true,
        Ema = 0.999,
    };

    // The same recipe on vgg-bn at twice the width: the wide network learns faster per epoch, so its first
    // cycle is 30 epochs and the warm restart runs 50. About 4 minutes per epoch on 2
    // cores, so it spans sessions with --resume.
    private static readonly TrainOptions Best = VggBn with { Architecture = "vgg-wide", Epochs = 80, RestartAt = "30" };

    // fast-cnn (a third of vgg-bn's time per face) with the vgg-bn recipe and lighter erasing for the smaller
    // network; 60 epochs fit one session.
    private static readonly TrainOptions Realtime = VggBn with
    {
        Architecture = "fast-cnn",
        Epochs = 60,
        RestartAt = null,
        RestartLrFactor = 1,
        Augment = "rotate=12,zoom=0.12,shift=0.1,flip,erase=0.25",
    };

    /// <summary>
    /// A further cosine cycle started from the previous stage's best package: lower peak rate, one warm-up
    /// epoch. Each was kept only because it raised PublicTest accuracy (docs/HISTORY.md; the runs are in git).
    /// </summary>
    private static TrainOptions NextCycle(TrainOptions previous, int epochs, double peak) =>
        previous with { Epochs = epochs, RestartAt = "none", LearningRate = peak, WarmupEpochs = 1 };

    /// <summary>
    /// The same cycle also learning from a stronger shipped package's softened predictions. The path is
    /// relative to the repository root, where <c>fer train --preset</c> is run.
    /// </summary>
    private static TrainOptions Distilled(TrainOptions stage, string teacher) =>
        stage with { Teacher = teacher, DistillWeight = 0.5, DistillTemperature = 4 };

    /// <summary>
    /// The same cycle also learning from the averaged predictions of earlier stages' packages (1-based stage
    /// numbers), computed once on the unaugmented training faces: an ensemble of large teachers on every batch
    /// would double the epoch.
    /// </summary>
    private static TrainOptions DistilledFromStages(TrainOptions stage, params int[] stages) =>
        Distilled(stage, string.Join(",", stages.Select(TrainingChain.StageTeacher))) with { DistillOffline = true };

    /// <summary>
    /// The same cycle with the validation faces added to the training data, once the recipe is settled: more
    /// faces help a data-starved network, and nothing is left to choose by validation accuracy.
    /// </summary>
    private static TrainOptions FinalFit(TrainOptions stage) => stage with { TrainOnValidation = true };

    /// <summary>
    /// The last stage of the shipped packages since the original FER2013 pixels replaced the stretched copy: a
    /// fine-tune of the stage before on the original pixels, each face standardized on its own, under
    /// photometric augmentation (docs/decisions/0013-per-face-normalization.md). A fresh recipe, not a cycle of
    /// the ones before: SGD at a low peak rate, one cosine cycle, no label smoothing or erasing changes.
    /// </summary>
    private static TrainOptions OriginalPixels(TrainOptions stage, int epochs, double peak, string augment) => new()
    {
        Architecture = stage.Architecture,
        Epochs = epochs,
        BatchSize = 64,
        Optimizer = OptimizerKind.Sgd,
        LearningRate = peak,
        WeightDecay = 5e-4,
        Schedule = LrScheduleKind.Cosine,
        WarmupEpochs = 1,
        EarlyStoppingPatience = 0,
        Ema = 0.999,
        PerFace = Models.Normalization.PerFaceStandardize,
        Augment = augment + "," + AugmentOptions.Photometric,
        MemoryFormat = TrainingMemoryFormat.ChannelsLast,
    };

    private static readonly TrainPreset[] All =
    [
        new("seed", "seed-cnn, the seed's Keras-style CNN (fer2013-seed)", [Seed]),
        new("best", "vgg-wide: 80 epochs in two cosine cycles, 30 then a warm restart for 50 at half the peak rate, then two 40-epoch cycles at peak lr 0.0125, then on Training + PublicTest a 40-epoch cycle and four 20-epoch ones at peak lr 0.00625, 0.003125, 0.00625 and 0.00625, the third with seed 43, the fourth with seed 44 and distilled from the three before it, then 12 epochs on the original pixels with per-face standardization and photometric augmentation (the stage before trained on PublicTest: fer models from-checkpoint <run>/stage9/checkpoints/last.ckpt), then 9 more on Training + PublicTest with seed 51 (fer2013-best)",
            [Best, NextCycle(Best, 40, 0.0125), NextCycle(Best, 40, 0.0125), FinalFit(NextCycle(Best, 40, 0.0125)), FinalFit(NextCycle(Best, 20, 0.00625)), FinalFit(NextCycle(Best, 20, 0.003125)), FinalFit(NextCycle(Best, 20, 0.00625)) with { Seed = 43 },
                DistilledFromStages(FinalFit(NextCycle(Best, 20, 0.00625)) with { Seed = 44 }, 5, 6, 7),
                OriginalPixels(Best, 12, 0.004, "rotate=12,zoom=0.12,shift=0.1,flip,erase=0.4") with { LabelSmoothing = 0.1, Precision = TrainingPrecision.BFloat16 },
                FinalFit(OriginalPixels(Best, 9, 0.004, "rotate=12,zoom=0.12,shift=0.1,flip,erase=0.4") with { LabelSmoothing = 0.1, Precision = TrainingPrecision.BFloat16, Seed = 51 })]),
        new("vggbn", "vgg-bn: 88 epochs in two cosine cycles, then a 40-epoch cycle at peak lr 0.0125 (fer2013-vggbn, the realtime preset's teacher)",
            [VggBn, NextCycle(VggBn, 40, 0.0125)]),
        new("realtime", "fast-cnn: 60 epochs, then cosine cycles of 45 (peak lr 0.025) and 40 epochs (0.0125), then 40 more distilled from models/fer2013-vggbn, then 40 more with seed 43 distilled offline from models/fer2013-best, then 14 on the original pixels with per-face standardization and photometric augmentation, distilled offline from models/fer2013-best (fer2013-realtime)",
            [Realtime, NextCycle(Realtime, 45, 0.025), NextCycle(Realtime, 40, 0.0125), Distilled(NextCycle(Realtime, 40, 0.0125), "models/fer2013-vggbn"),
                Distilled(NextCycle(Realtime, 40, 0.0125), "models/fer2013-best") with { DistillOffline = true, Seed = 43 },
                Distilled(OriginalPixels(Realtime, 14, 0.01, "rotate=10,zoom=0.1,shift=0.1,flip,erase=0.3"), "models/fer2013-best") with { DistillOffline = true }]),
    ];

    public static IEnumerable<string> Names => All.Select(p => p.Name);

    public static IReadOnlyList<TrainPreset> List => All;

    public static TrainPreset Get(string name) =>
        All.FirstOrDefault(p => p.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"unknown preset '{name}'; known: {string.Join(", ", Names)}");
}
