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
        var baseLr = options.LearningRate;
        if (options.WarmupEpochs > 0 && epochProgress < options.WarmupEpochs)
        {
            return baseLr * Math.Max(0.01, epochProgress / options.WarmupEpochs);
        }
        return options.Schedule switch
        {
            LrScheduleKind.Cosine => CosineAt(options, epochProgress),
            LrScheduleKind.Plateau => Math.Max(options.MinLearningRate, baseLr * state.PlateauScale),
            _ => baseLr,
        };
    }

    private static double CosineAt(TrainOptions options, double epochProgress)
    {
        var span = Math.Max(1e-9, options.Epochs - options.WarmupEpochs);
        var t = Math.Clamp((epochProgress - options.WarmupEpochs) / span, 0, 1);
        return options.MinLearningRate + (options.LearningRate - options.MinLearningRate) * 0.5 * (1 + Math.Cos(Math.PI * t));
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
