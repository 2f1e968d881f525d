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

    /// <summary>The preset the stages come from, recorded in the run's <see cref="ChainManifest"/> (for <c>fer runs</c>).</summary>
    public string? Preset { get; init; }

    public string StageDirectory(int stage) => Path.Combine(RunDirectory, $"stage{stage + 1}");

    /// <summary>The package the chain ends with: the last stage's best model.</summary>
    public string ModelPath => Path.Combine(StageDirectory(_stages.Count - 1), "model");

    public TrainOptions StageOptions(int stage)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stage);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(stage, _stages.Count);
        var options = _stages[stage] with { Teacher = ResolveTeachers(_stages[stage].Teacher, stage) };
        return stage == 0 ? options : options with { InitFrom = Path.Combine(StageDirectory(stage - 1), "model") };
    }

    /// <summary>How a preset stage names an earlier stage's package as a teacher (1-based, as in <c>stageN</c>).</summary>
    public static string StageTeacher(int stageNumber) => $"{StageToken}{stageNumber}";

    private const string StageToken = "@stage";

    /// <summary>Whether a teacher path is a <see cref="StageTeacher"/> token, which only a chain can resolve.</summary>
    public static bool IsStageTeacher(string path) => path?.StartsWith(StageToken, StringComparison.Ordinal) == true;

    /// <summary>Replaces <see cref="StageTeacher"/> tokens by the packages of this chain's earlier stages.</summary>
    private string? ResolveTeachers(string? teacher, int stage)
    {
        if (teacher is null || !teacher.Contains(StageToken, StringComparison.Ordinal)) return teacher;
        return string.Join(",", DistillationTeacher.PathsOf(teacher).Select(path =>
        {
            if (!IsStageTeacher(path)) return path;
            return int.TryParse(path.AsSpan(StageToken.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var number)
                && number >= 1 && number <= stage
                ? Path.Combine(StageDirectory(number - 1), "model")
                : throw new ArgumentException($"stage {stage + 1}: teacher '{path}' must name an earlier stage ({StageToken}1 to {StageToken}{stage})");
        }));
    }

    /// <summary>
    /// The epochs of the stages after <paramref name="stage"/>, each counted in epochs of this stage: weighted by
    /// its training faces relative to this stage's (a final fit trains on the validation faces too). Times the
    /// last epoch's seconds, it estimates the rest of a chain that runs for most of a day.
    /// </summary>
    public double LaterStagesInEpochsOf(int stage, int trainFaces, int validationFaces)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(stage);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(stage, _stages.Count);
        ArgumentOutOfRangeException.ThrowIfLessThan(trainFaces, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(validationFaces);
        double Faces(TrainOptions options) => trainFaces + (options.TrainOnValidation ? validationFaces : 0);
        var faces = Faces(_stages[stage]);
        return _stages.Skip(stage + 1).Sum(later => later.Epochs * Faces(later) / faces);
    }

    /// <summary>Passed to every stage's <see cref="Trainer.PartialCheckpointInterval"/>.</summary>
    public TimeSpan? PartialCheckpointInterval { get; init; } = Trainer.DefaultPartialCheckpointInterval;

    /// <summary>Passed to every stage's <see cref="Trainer.TeacherTargetsCacheDirectory"/>.</summary>
    public string? TeacherTargetsCacheDirectory { get; init; }

    public Trainer StageTrainer(int stage) => new(StageOptions(stage), StageDirectory(stage))
    {
        PartialCheckpointInterval = PartialCheckpointInterval,
        TeacherTargetsCacheDirectory = TeacherTargetsCacheDirectory,
    };

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
        using var runLock = RunLock.Acquire(RunDirectory);
        ChainManifest.Write(RunDirectory, new ChainManifest(Preset, _stages.Select(s => s.Epochs).ToList()));
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
