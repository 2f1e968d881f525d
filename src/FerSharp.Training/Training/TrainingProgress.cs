namespace FerSharp.Training;

public enum TrainingPhase
{
    /// <summary>Offline distillation: the teachers' targets are being computed (Batch of TotalBatches faces).</summary>
    TeacherTargets,
    EpochStarted,
    Batch,
    Validating,
    EpochCompleted,
    Stopped,
}

/// <summary>What the trainer reports while it runs (for progress bars and logs).</summary>
public sealed record TrainingProgress(
    TrainingPhase Phase,
    int Epoch,
    int TotalEpochs,
    int Batch,
    int TotalBatches,
    double RunningLoss,
    double RunningAccuracy,
    double ImagesPerSecond,
    EpochMetrics? Metrics = null,
    bool IsBest = false,
    string? Message = null);
