using FerSharp.Data;

namespace FerSharp.Training;

/// <summary>
/// Runs a preset's stages one after another in <c>&lt;run&gt;/stage1</c>, <c>stage2</c>, …; each stage after the
/// first starts from the best package of the one before (as <c>--init-from</c> would). Every stage is an
/// ordinary <see cref="Trainer"/> run with its own checkpoints, so a stopped chain continues with
/// <c>resume</c>: finished stages are passed over, the stopped one resumes, later ones start.
/// </summary>
public sealed class TrainingChain
{
    private readonly IReadOnlyList<TrainOptions> _stages;

    public TrainingChain(IReadOnlyList<TrainOptions> stages, string runDirectory)
    {
        ArgumentNullException.ThrowIfNull(stages);
        ArgumentException.ThrowIfNullOrEmpty(runDirectory);
        if (stages.Count == 0) throw new ArgumentException("a training chain needs at least one stage");
        _stages = stages;
        RunDirectory = runDirectory;
        for (var i = 0; i < stages.Count; i++) StageOptions(i).Validate();
    }

    public string RunDirectory { get; }
    public int StageCount => _stages.Count;

    public string StageDirectory(int stage) => Path.Combine(RunDirectory, $"stage{stage + 1}");

    /// <summary>The package the chain ends with: the last stage's best model.</summary>
    public string ModelPath => Path.Combine(StageDirectory(_stages.Count - 1), "model");

    public TrainOptions StageOptions(int stage)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stage);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(stage, _stages.Count);
        return stage == 0 ? _stages[0] : _stages[stage] with { InitFrom = Path.Combine(StageDirectory(stage - 1), "model") };
    }

    /// <summary>Passed to every stage's <see cref="Trainer.PartialCheckpointInterval"/>.</summary>
    public TimeSpan? PartialCheckpointInterval { get; init; } = Trainer.DefaultPartialCheckpointInterval;

    public Trainer StageTrainer(int stage) => new(StageOptions(stage), StageDirectory(stage)) { PartialCheckpointInterval = PartialCheckpointInterval };

    /// <summary>
    /// Runs the stages in order. <paramref name="runStage"/> (stage index, its trainer, resume) replaces
    /// <see cref="Trainer.Fit"/> so that a caller can show progress; it must call Fit with these data.
    /// Stops after a stage that was cancelled or trained no epoch.
    /// </summary>
    public IReadOnlyList<TrainingResult> Fit(
        FaceDataset train,
        FaceDataset validation,
        bool resume = false,
        Func<int, Trainer, bool, TrainingResult>? runStage = null,
        CancellationToken cancellationToken = default)
    {
        if (Trainer.HasRunIn(RunDirectory))
        {
            throw new IOException($"{RunDirectory} holds a single run, not a chain of stages; continue it with the options it was started with, or choose another name");
        }
        var results = new List<TrainingResult>();
        for (var stage = 0; stage < _stages.Count; stage++)
        {
            if (cancellationToken.IsCancellationRequested) break;
            var trainer = StageTrainer(stage);
            var result = runStage != null
                ? runStage(stage, trainer, resume)
                : trainer.Fit(train, validation, resume, cancellationToken: cancellationToken);
            results.Add(result);
            if (result.Cancelled || result.History.Count == 0) break;
        }
        return results;
    }
}
