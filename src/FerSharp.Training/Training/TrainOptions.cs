using System.Text.Json.Serialization;

namespace FerSharp.Training;

[JsonConverter(typeof(JsonStringEnumConverter<OptimizerKind>))]
public enum OptimizerKind
{
    Adam,
    AdamW,
    Sgd,
}

[JsonConverter(typeof(JsonStringEnumConverter<LrScheduleKind>))]
public enum LrScheduleKind
{
    None,
    Plateau,
    Cosine,
}

/// <summary>Arithmetic of the training passes (the weights the optimizer updates stay float32 either way).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TrainingPrecision>))]
public enum TrainingPrecision
{
    Float32,
    /// <summary>
    /// Forward and backward passes in bfloat16 on a copy of the network (<see cref="PassCopy"/>): about 1.8x
    /// faster for vgg-wide on a CPU with native bfloat16 arithmetic (AVX-512 BF16); likely slower where it is emulated.
    /// </summary>
    BFloat16,
}

/// <summary>Memory layout of the training passes' convolution weights and activations.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TrainingMemoryFormat>))]
public enum TrainingMemoryFormat
{
    /// <summary>libtorch's default NCHW.</summary>
    Contiguous,
    /// <summary>
    /// NHWC on a copy of the network (<see cref="PassCopy"/>; the weights stay NCHW): 1.1-1.2x the training
    /// throughput of the convolutional networks here, 1.6-1.9x for mini-xception (`bench/run --only memory-format`).
    /// </summary>
    ChannelsLast,
}

/// <summary>Everything that defines a training run; saved as <c>config.json</c> and in each checkpoint.</summary>
public sealed record TrainOptions
{
    public string Architecture { get; init; } = "seed-cnn";
    public int Epochs { get; init; } = 40;
    public int BatchSize { get; init; } = 64;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;
    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; }
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; } = true;
    public LrScheduleKind Schedule { get; init; } = LrScheduleKind.Plateau;
    public double WarmupEpochs { get; init; }
    /// <summary>Cosine schedule only: epochs at which a new cosine cycle starts (warm restarts), e.g. "40" or "40,80"; null or "none" = one cycle.</summary>
    public string? RestartAt { get; init; }
    /// <summary>Each restarted cycle peaks at the previous cycle's peak times this factor.</summary>
    public double RestartLrFactor { get; init; } = 1;
    public double PlateauFactor { get; init; } = 0.5;
    public int PlateauPatience { get; init; } = 3;
    public double MinLearningRate { get; init; } = 1e-6;
    public double LabelSmoothing { get; init; }
    /// <summary>
    /// Logit adjustment (Menon et al. 2021): the loss sees the logits plus this times the log of each class's
    /// share of the training targets, so the network's own logits learn the class-balanced answer; rare classes
    /// (disgust) are then predicted more often. 0 = off; 1 = fully balanced.
    /// </summary>
    public double LogitAdjustment { get; init; }
    public string Augment { get; init; } = AugmentOptions.Seed.ToString();
    /// <summary>Metric watched by early stopping, best checkpoint and plateau schedule: val_accuracy or val_loss.</summary>
    public string Monitor { get; init; } = "val_accuracy";
    /// <summary>Epochs without improvement before stopping; 0 disables early stopping.</summary>
    public int EarlyStoppingPatience { get; init; } = 8;
    /// <summary>Standardize inputs with the training set's mean and std (else only scale to [0,1]).</summary>
    public bool Standardize { get; init; }
    /// <summary>
    /// Per-face input step (<see cref="Models.Normalization.PerFace"/>): <c>standardize</c> makes each face mean 0,
    /// std 1 on its own; null keeps the default (none for a new run, the package's own with <see cref="InitFrom"/>).
    /// With <see cref="InitFrom"/> it replaces the package's normalization, and fine-tuning adapts the weights.
    /// </summary>
    public string? PerFace { get; init; }
    public long Seed { get; init; } = 42;
    /// <summary>Exponential moving average of weights (decay per step); 0 disables.</summary>
    public double Ema { get; init; }
    /// <summary>Arithmetic of the forward and backward passes; it changes the run's numbers, so it is part of the recipe.</summary>
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Float32;
    /// <summary>Memory layout of the passes; like the precision it changes float rounding, so it is part of the recipe.</summary>
    public TrainingMemoryFormat MemoryFormat { get; init; } = TrainingMemoryFormat.Contiguous;
    /// <summary>Model package whose weights (and input normalization) start the run instead of a random initialisation.</summary>
    public string? InitFrom { get; init; }
    /// <summary>
    /// With <see cref="InitFrom"/> a wider network of the same layout (vgg-wide for vgg-bn): start from it narrowed
    /// into <see cref="Architecture"/>, each convolution keeping its channels of largest batch-norm scale
    /// (<see cref="Models.ChannelPruning"/>), as <c>fer models prune</c> and then <c>--init-from</c> would.
    /// </summary>
    public bool Narrow { get; init; }
    /// <summary>
    /// Model package whose predictions the run also learns from (knowledge distillation), or several separated by
    /// commas, whose probabilities are averaged (an ensemble teacher); null = none.
    /// </summary>
    public string? Teacher { get; init; }
    /// <summary>
    /// Distil from the teachers' predictions on the unaugmented training faces, computed once before the first
    /// epoch, instead of running them on every augmented batch (see <see cref="DistillationTeacher"/>).
    /// </summary>
    public bool DistillOffline { get; init; }
    /// <summary>Share of the loss given to matching the teacher's softened predictions (the rest to the labels).</summary>
    public double DistillWeight { get; init; } = 0.5;
    /// <summary>Softmax temperature for teacher and student in the distillation term (Hinton et al. 2015).</summary>
    public double DistillTemperature { get; init; } = 4;

    /// <summary>
    /// The validation faces join the training data: a final fit once the recipe has been chosen on them. Their
    /// accuracy then no longer measures generalisation, so the package is the last epoch's, and nothing may
    /// steer by it (no plateau schedule, no early stopping).
    /// </summary>
    public bool TrainOnValidation { get; init; }

    [JsonIgnore]
    public IReadOnlyList<int> RestartEpochs => ParseRestarts(RestartAt);

    [JsonIgnore]
    public AugmentOptions AugmentOptions => AugmentOptions.Parse(Augment);

    /// <summary>The packages <see cref="Teacher"/> names (none without a teacher).</summary>
    [JsonIgnore]
    public IReadOnlyList<string> TeacherPaths => Teacher is null ? [] : DistillationTeacher.PathsOf(Teacher);

    public void Validate()
    {
        _ = Models.ModelRegistry.Get(Architecture);
        _ = AugmentOptions;
        if (Epochs < 1) throw new ArgumentException("epochs must be at least 1");
        if (BatchSize < 2) throw new ArgumentException("batch size must be at least 2 (batch norm needs more than one sample)");
        // Written as "not inside the range" so that NaN, which fails every comparison, is refused too.
        Require(LearningRate > 0 && double.IsFinite(LearningRate), "learning rate (--lr) must be a positive number", LearningRate);
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), "weight decay (--weight-decay) must be 0 or more", WeightDecay);
        Require(Momentum is >= 0 and < 1, "momentum (--momentum) must be in [0, 1)", Momentum);
        Require(WarmupEpochs >= 0 && double.IsFinite(WarmupEpochs), "warm-up (--warmup) must be 0 or more epochs", WarmupEpochs);
        Require(PlateauFactor is > 0 and < 1, "plateau factor must be in (0, 1)", PlateauFactor);
        if (PlateauPatience < 1) throw new ArgumentException($"plateau patience (--plateau-patience) must be at least 1 epoch, got {PlateauPatience}");
        Require(MinLearningRate >= 0 && double.IsFinite(MinLearningRate), "minimum learning rate must be 0 or more", MinLearningRate);
        if (EarlyStoppingPatience < 0) throw new ArgumentException($"early stopping patience (--patience) must be 0 (off) or more epochs, got {EarlyStoppingPatience}");
        Require(LabelSmoothing is >= 0 and < 1, "label smoothing (--label-smoothing) must be in [0, 1)", LabelSmoothing);
        Require(LogitAdjustment is >= 0 and <= 2, "logit adjustment (--logit-adjust) must be from 0 to 2", LogitAdjustment);
        if (PerFace is not null && !Models.Normalization.KnownPerFace.Contains(PerFace))
        {
            throw new ArgumentException($"per-face normalization (--per-face) must be one of {string.Join(", ", Models.Normalization.KnownPerFace)}, got '{PerFace}'");
        }
        if (Monitor is not ("val_accuracy" or "val_loss")) throw new ArgumentException("monitor must be val_accuracy or val_loss");
        if (TrainOnValidation && (Schedule == LrScheduleKind.Plateau || EarlyStoppingPatience > 0))
        {
            throw new ArgumentException("training on the validation faces leaves nothing to steer by: use a cosine or no schedule and --patience 0");
        }
        Require(Ema is >= 0 and < 1, "EMA decay (--ema) must be in [0, 1)", Ema);
        Require(DistillWeight is >= 0 and <= 1, "distillation weight (--distill-weight) must be in [0, 1]", DistillWeight);
        Require(DistillTemperature > 0 && double.IsFinite(DistillTemperature), "distillation temperature (--distill-temperature) must be positive", DistillTemperature);
        _ = TeacherPaths;
        if (DistillOffline && Teacher is null) throw new ArgumentException("--distill-offline needs --teacher");
        if (Narrow && InitFrom is null) throw new ArgumentException("--narrow needs --init-from: the wider package to narrow");
        Require(RestartLrFactor is > 0 and <= 1, "restart learning-rate factor (--restart-lr-factor) must be in (0, 1]", RestartLrFactor);
        var restarts = RestartEpochs;
        if (restarts.Count > 0)
        {
            if (Schedule != LrScheduleKind.Cosine) throw new ArgumentException("restarts need the cosine schedule");
            var previous = 0.0;
            foreach (var start in restarts)
            {
                if (start - previous <= WarmupEpochs || start >= Epochs)
                {
                    throw new ArgumentException($"restart at epoch {start}: restarts must increase, leave each cycle longer than the warm-up ({WarmupEpochs}) and come before the last epoch ({Epochs}); for a single cosine cycle use --restart-at none");
                }
                previous = start;
            }
        }
    }

    private static void Require(bool ok, string rule, double value)
    {
        if (!ok) throw new ArgumentException($"{rule}, got {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}");
    }

    private static int[] ParseRestarts(string? text)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase)) return [];
        return text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(part => int.TryParse(part, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var epoch) && epoch > 0
                ? epoch
                : throw new ArgumentException($"restart epochs: '{part}' is not a positive whole number (expected e.g. 40 or 40,80)"))
            .ToArray();
    }
}
