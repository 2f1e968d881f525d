using FerSharp.Models;

using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// What a distilling run learns from (<see cref="TrainOptions.Teacher"/>): one model package, or several whose
/// probabilities are averaged per face (an ensemble teacher). Online, the teachers see each augmented batch the
/// student sees. Offline (<see cref="TrainOptions.DistillOffline"/>), their predictions on the unaugmented
/// training faces are computed once, before the first step, and each step looks its faces up: one inference
/// pass per teacher per run instead of one per step, which is what makes an ensemble of large networks
/// affordable on two cores. The offline targets do not follow the augmentation (a rotated or erased face keeps
/// the targets of the whole face), the price of that saving.
/// </summary>
internal sealed class DistillationTeacher : IDisposable
{
    private readonly IReadOnlyList<EmotionModel> _models;
    private Tensor? _offlineProbabilities;

    private DistillationTeacher(IReadOnlyList<EmotionModel> models) => _models = models;

    /// <summary>The packages a <c>--teacher</c> value names: one path, or several separated by commas.</summary>
    public static IReadOnlyList<string> PathsOf(string teacher)
    {
        ArgumentNullException.ThrowIfNull(teacher);
        var paths = teacher.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        return paths.Length > 0 ? paths : throw new ArgumentException("--teacher names no package");
    }

    /// <summary>
    /// Loads every package named by <paramref name="teacher"/>; each must predict <paramref name="classNames"/>
    /// in that order. <paramref name="log"/> receives one line per package with its weights checksum.
    /// </summary>
    public static DistillationTeacher Load(string teacher, IReadOnlyList<string> classNames, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        ArgumentNullException.ThrowIfNull(log);
        var models = new List<EmotionModel>();
        try
        {
            foreach (var path in PathsOf(teacher))
            {
                if (TrainingChain.IsStageTeacher(path))
                {
                    throw new ArgumentException($"--teacher {path} names an earlier stage of a preset, which exists only when the preset runs all its stages");
                }
                var model = EmotionModel.Load(path);
                models.Add(model);
                // The recipes that distil were measured with libtorch teaching; two thread pools taking turns on
                // two cores every step is not something to change unmeasured.
                model.Engine = InferenceEngine.TorchSharp;
                if (!model.ClassNames.SequenceEqual(classNames))
                {
                    throw new ArgumentException($"{path}: --teacher package predicts {string.Join(",", model.ClassNames)} but the data has {string.Join(",", classNames)}");
                }
                // Load verified the weights against this hash when the package records one.
                log($"teacher {path} ({model.Metadata.Name}, {model.Metadata.Architecture}, weights sha256 {Trainer.Short(model.Metadata.WeightsSha256)}{(model.Metadata.FlipAveraging ? ", flip averaging" : "")})");
            }
            return new DistillationTeacher(models);
        }
        catch
        {
            foreach (var model in models) model.Dispose();
            throw;
        }
    }

    public int Count => _models.Count;

    /// <summary>
    /// The teachers' weights checksums joined by '+', recorded in checkpoints so that a resumed run can refuse a
    /// package replaced at the same path (null when a package records none).
    /// </summary>
    public string? WeightsSha256 =>
        _models.Any(m => m.Metadata.WeightsSha256 is null) ? null : string.Join("+", _models.Select(m => m.Metadata.WeightsSha256));

    public bool IsOffline => _offlineProbabilities is not null;

    /// <summary>
    /// What decides the offline targets: each package's weights checksum and flip averaging, in order (null when a
    /// package records no checksum, so that nothing unidentified is reused).
    /// </summary>
    public string? TargetsIdentity =>
        WeightsSha256 is null ? null : string.Join("+", _models.Select(m => $"{m.Metadata.WeightsSha256}{(m.Metadata.FlipAveraging ? ":flip" : "")}"));

    /// <summary>The offline targets [faces, classes] (null before they are computed or set); the teacher owns them.</summary>
    public Tensor? OfflineTargets => _offlineProbabilities;

    /// <summary>Takes <paramref name="probabilities"/> [faces, classes], saved by an earlier part of the run, as the offline targets.</summary>
    public void UseOffline(Tensor probabilities)
    {
        ArgumentNullException.ThrowIfNull(probabilities);
        _offlineProbabilities?.Dispose();
        _offlineProbabilities = probabilities;
    }

    /// <summary>
    /// Computes the offline targets for <paramref name="pixels"/> (uint8 [N,1,H,W], the training faces in the
    /// run's index order): each package's own predictions (with its flip averaging, if it has one), averaged
    /// over the packages. <paramref name="progress"/> receives the faces done.
    /// </summary>
    public void PrecomputeOffline(Tensor pixels, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        const int batch = 64; // evaluation measured batches above 64 slower per face on 2 cores
        var count = pixels.shape[0];
        var parts = new List<Tensor>();
        try
        {
            for (long start = 0; start < count; start += batch)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                var faces = pixels.narrow(0, start, Math.Min(batch, count - start));
                parts.Add(AveragedProbabilities(faces).MoveToOuterDisposeScope());
                progress?.Report(start + faces.shape[0]);
            }
            _offlineProbabilities?.Dispose();
            _offlineProbabilities = cat(parts, 0);
        }
        finally
        {
            foreach (var part in parts) part.Dispose();
        }
    }

    private Tensor AveragedProbabilities(Tensor faces)
    {
        var sum = _models[0].PredictProbabilities(faces);
        for (var i = 1; i < _models.Count; i++)
        {
            using var next = _models[i].PredictProbabilities(faces);
            sum.add_(next);
        }
        return sum.div_(_models.Count);
    }

    /// <summary>
    /// The precomputed averaged probabilities [B, classes] of the training faces at <paramref name="index"/>
    /// (offline only): targets a mixed batch can mix like its labels.
    /// </summary>
    public Tensor OfflineProbabilities(Tensor index)
    {
        ArgumentNullException.ThrowIfNull(index);
        return _offlineProbabilities is { } offline
            ? offline.index_select(0, index)
            : throw new InvalidOperationException("the teacher's offline targets have not been computed");
    }

    /// <summary>
    /// Teacher logits [B, classes] for a batch: offline, the log of the precomputed probabilities of the faces at
    /// <paramref name="index"/> (Trainer takes <see cref="OfflineProbabilities"/> instead, to mix them like a mixed batch's labels);
    /// online, the teachers on <paramref name="augmented"/> (scaled to [0,1], each in its own input
    /// normalization). One online teacher gives its raw logits; several give the log of their averaged
    /// probabilities, which the temperature softens alike because softmax ignores the constant between them.
    /// </summary>
    public Tensor Logits(Tensor augmented, Tensor index)
    {
        ArgumentNullException.ThrowIfNull(augmented);
        ArgumentNullException.ThrowIfNull(index);
        if (_offlineProbabilities is { } offline)
        {
            using var probabilities = offline.index_select(0, index);
            return probabilities.log();
        }
        if (_models.Count == 1) return OnlineLogits(_models[0], augmented);
        using var scope = NewDisposeScope();
        Tensor? sum = null;
        foreach (var model in _models)
        {
            var probabilities = nn.functional.softmax(OnlineLogits(model, augmented), 1);
            sum = sum is null ? probabilities : sum.add_(probabilities);
        }
        return sum!.div_(_models.Count).log_().MoveToOuterDisposeScope();
    }

    private static Tensor OnlineLogits(EmotionModel teacher, Tensor augmented)
    {
        using var input = Preprocessing.NormalizeScaled(augmented, teacher.Metadata.Normalization);
        return teacher.Forward(input);
    }

    public void Dispose()
    {
        _offlineProbabilities?.Dispose();
        foreach (var model in _models) model.Dispose();
    }
}
