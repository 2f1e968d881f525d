namespace FerSharp.Training;

public enum RunState
{
    /// <summary>A process holds the run's lock now.</summary>
    Training,
    /// <summary>Stopped before its last epoch (or stage): <c>--resume</c> continues it.</summary>
    Stopped,
    /// <summary>All its epochs (and stages) done, or stopped early by its patience.</summary>
    Finished,
}

/// <summary>
/// Where a run folder stands, read from its checkpoints and lock alone (nothing is loaded into libtorch), so it
/// can be asked while the run trains: for a chain, its current stage.
/// </summary>
/// <param name="Name">The run folder's name (<c>--name</c>).</param>
/// <param name="Directory">The run folder.</param>
/// <param name="State">Training now, stopped or finished.</param>
/// <param name="ProcessId">The process training it now, if any.</param>
/// <param name="Preset">The preset a chain comes from, when its manifest says.</param>
/// <param name="Stage">1-based stage of a chain; null for a single run.</param>
/// <param name="Stages">Stages of the chain, when its manifest says (chains from before manifests: null).</param>
/// <param name="EpochsDone">Completed epochs of the run or current stage.</param>
/// <param name="BatchesIntoNextEpoch">Batches of the next epoch a mid-epoch checkpoint holds, else 0.</param>
/// <param name="Options">The recipe of the run or current stage.</param>
/// <param name="Best">The epoch the package holds (best, or the last of a final fit); null before the first epoch.</param>
/// <param name="Last">The last completed epoch.</param>
/// <param name="Seconds">Training time of the whole run, all stages so far.</param>
/// <param name="LastWriteUtc">When the checkpoint it would resume from was written.</param>
public sealed record RunStatus(
    string Name,
    string Directory,
    RunState State,
    int? ProcessId,
    string? Preset,
    int? Stage,
    int? Stages,
    TrainOptions Options,
    int EpochsDone,
    int BatchesIntoNextEpoch,
    EpochMetrics? Best,
    EpochMetrics? Last,
    double Seconds,
    DateTime LastWriteUtc)
{
    /// <summary>Epochs the whole chain has left after this stage, when its manifest says.</summary>
    public int? LaterStageEpochs { get; init; }

    /// <summary>Seconds of the last (up to) five epochs of the run or current stage, for a pace.</summary>
    public IReadOnlyList<double> RecentEpochSeconds { get; init; } = [];
}

/// <summary>Lists the runs under a runs folder (<c>fer runs</c>).</summary>
public static class RunCatalog
{
    /// <summary>
    /// Every run folder directly under <paramref name="runsDirectory"/>, most recently written first. A folder
    /// whose checkpoint or manifest cannot be read is left out and described in <paramref name="problems"/>
    /// (one bad run must not hide the others).
    /// </summary>
    public static IReadOnlyList<RunStatus> List(string runsDirectory, ICollection<string>? problems = null)
    {
        if (!Directory.Exists(runsDirectory))
        {
            throw new DirectoryNotFoundException($"{runsDirectory}: no such folder of runs");
        }
        var runs = new List<RunStatus>();
        foreach (var directory in Directory.EnumerateDirectories(runsDirectory))
        {
            try
            {
                if (Inspect(directory) is { } status) runs.Add(status);
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                problems?.Add(ex.Message);
            }
        }
        return runs.OrderByDescending(r => r.LastWriteUtc).ToList();
    }

    /// <summary>The status of one run folder (single run or chain), or null when it holds no run yet.</summary>
    public static RunStatus? Inspect(string runDirectory)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(runDirectory));
        var manifest = ChainManifest.Read(runDirectory);
        var stageDirectories = StageDirectories(runDirectory);
        if (stageDirectories.Count == 0)
        {
            return Trainer.ResumeCheckpointIn(runDirectory) is { } checkpoint
                ? Describe(name, runDirectory, checkpoint, RunLock.TrainingProcess(runDirectory), 0)
                : null;
        }
        // The current stage is the last one with a checkpoint; earlier ones count toward the time.
        var started = stageDirectories
            .Select(d => (d.Stage, d.Path, Checkpoint: Trainer.ResumeCheckpointIn(d.Path)))
            .Where(d => d.Checkpoint is not null)
            .ToList();
        if (started.Count == 0) return null;
        var earlierSeconds = started.SkipLast(1).Sum(d => Checkpoint.LoadState(d.Checkpoint!).History.Sum(e => e.Seconds));
        var (stage, directory, current) = started[^1];
        var status = Describe(name, runDirectory, current!,
            RunLock.TrainingProcess(runDirectory) ?? RunLock.TrainingProcess(directory), earlierSeconds);
        var stages = manifest?.StageEpochs.Count;
        var state = status.State == RunState.Finished && stages is { } total && stage < total ? RunState.Stopped : status.State;
        return status with
        {
            State = state,
            Preset = manifest?.Preset,
            Stage = stage,
            Stages = stages,
            LaterStageEpochs = manifest?.StageEpochs.Skip(stage).Sum(),
        };
    }

    private static List<(int Stage, string Path)> StageDirectories(string runDirectory) =>
        Directory.EnumerateDirectories(runDirectory, "stage*")
            .Select(d => (Number: int.TryParse(Path.GetFileName(d).AsSpan("stage".Length), System.Globalization.NumberStyles.None,
                System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 0, Path: d))
            .Where(d => d.Number > 0)
            .OrderBy(d => d.Number)
            .ToList();

    private static RunStatus Describe(string name, string runDirectory, string checkpoint, int? processId, double earlierSeconds)
    {
        var state = Checkpoint.LoadState(checkpoint);
        var history = state.History;
        var best = history.FirstOrDefault(e => e.Epoch == state.BestEpoch) ?? (history.Count > 0 ? history[^1] : null);
        var finished = state.Stopped && state.InProgress is null;
        return new RunStatus(
            name,
            runDirectory,
            processId is not null ? RunState.Training : finished ? RunState.Finished : RunState.Stopped,
            processId,
            Preset: null,
            Stage: null,
            Stages: null,
            state.Options,
            state.Epoch,
            state.InProgress?.Batches ?? 0,
            best,
            history.Count > 0 ? history[^1] : null,
            earlierSeconds + history.Sum(e => e.Seconds) + (state.InProgress?.Seconds ?? 0),
            File.GetLastWriteTimeUtc(checkpoint))
        {
            RecentEpochSeconds = history.TakeLast(5).Select(e => e.Seconds).ToList(),
        };
    }
}
