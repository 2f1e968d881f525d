namespace FerSharp.Training;

/// <summary>Serializable state of the learning-rate schedule (the plateau part changes with validation results).</summary>
public sealed record LrScheduleState(double PlateauScale = 1, double PlateauBest = double.NaN, int PlateauBadEpochs = 0);

/// <summary>
/// Learning rate as a pure function of progress and state: linear warm-up, then constant, cosine decay,
/// or reduce-on-plateau. Being pure is what makes <c>--resume</c> exact.
/// </summary>
public static class LrSchedule
{
    /// <summary>The rate at fractional epoch <paramref name="epochProgress"/> (0 at the start of training).</summary>
    public static double At(TrainOptions options, LrScheduleState state, double epochProgress)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(state);
        if (options.Schedule == LrScheduleKind.Cosine)
        {
            return CosineAt(options, epochProgress);
        }
        var baseLr = options.LearningRate;
        if (options.WarmupEpochs > 0 && epochProgress < options.WarmupEpochs)
        {
            return Warmup(baseLr, epochProgress, options.WarmupEpochs);
        }
        return options.Schedule == LrScheduleKind.Plateau
            ? Math.Max(options.MinLearningRate, baseLr * state.PlateauScale)
            : baseLr;
    }

    /// <summary>
    /// Cosine annealing in cycles (SGDR): a cycle starts at 0 and at each epoch of <see cref="TrainOptions.RestartAt"/>,
    /// warms up, then decays from its peak to the minimum at the cycle's end. Cycle k peaks at
    /// lr * <see cref="TrainOptions.RestartLrFactor"/>^k. With no restarts this is one warm-up + cosine over all epochs.
    /// </summary>
    private static double CosineAt(TrainOptions options, double epochProgress)
    {
        var starts = options.RestartEpochs;
        var cycle = starts.Count(s => s <= epochProgress);
        double cycleStart = cycle == 0 ? 0 : starts[cycle - 1];
        double cycleEnd = cycle < starts.Count ? starts[cycle] : options.Epochs;
        var peak = options.LearningRate * Math.Pow(options.RestartLrFactor, cycle);
        var local = epochProgress - cycleStart;
        if (options.WarmupEpochs > 0 && local < options.WarmupEpochs)
        {
            return Warmup(peak, local, options.WarmupEpochs);
        }
        var span = Math.Max(1e-9, cycleEnd - cycleStart - options.WarmupEpochs);
        var t = Math.Clamp((local - options.WarmupEpochs) / span, 0, 1);
        return options.MinLearningRate + (peak - options.MinLearningRate) * 0.5 * (1 + Math.Cos(Math.PI * t));
    }

    private static double Warmup(double peak, double progress, double warmupEpochs) =>
        peak * Math.Max(0.01, progress / warmupEpochs);

    /// <summary>
    /// Whether <paramref name="a"/> and <paramref name="b"/> give the same rate throughout the first
    /// <paramref name="epochs"/> epochs (sampled finely), i.e. whether a run trained under <paramref name="a"/>
    /// can continue under <paramref name="b"/> as if it had used <paramref name="b"/> from the start.
    /// </summary>
    public static bool SameUpTo(TrainOptions a, TrainOptions b, int epochs)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        const int samplesPerEpoch = 64;
        for (var i = 0; i < epochs * samplesPerEpoch; i++)
        {
            var at = (double)i / samplesPerEpoch;
            var (x, y) = (At(a, new LrScheduleState(), at), At(b, new LrScheduleState(), at));
            if (Math.Abs(x - y) > 1e-12 * Math.Max(1, Math.Abs(x))) return false;
        }
        return true;
    }

    /// <summary>Feeds one epoch's monitored value to the plateau logic.</summary>
    public static LrScheduleState AfterEpoch(TrainOptions options, LrScheduleState state, double monitored)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(state);
        if (options.Schedule != LrScheduleKind.Plateau)
        {
            return state;
        }
        var higherIsBetter = options.Monitor != "val_loss";
        var improved = double.IsNaN(state.PlateauBest)
            || (higherIsBetter ? monitored > state.PlateauBest + 1e-4 : monitored < state.PlateauBest - 1e-4);
        if (improved)
        {
            return state with { PlateauBest = monitored, PlateauBadEpochs = 0 };
        }
        var bad = state.PlateauBadEpochs + 1;
        return bad > options.PlateauPatience
            ? state with { PlateauScale = state.PlateauScale * options.PlateauFactor, PlateauBadEpochs = 0 }
            : state with { PlateauBadEpochs = bad };
    }
}
