using FerSharp.Data;

using TorchSharp;
using TorchSharp.Modules;

using static TorchSharp.torch;

namespace FerSharp.Models;

/// <summary>A package whose weights went into an average: its name and weight checksum, so the average can be traced.</summary>

/// <summary>
/// One network whose weights are the uniform average of several packages of the same architecture, e.g. the
/// ends of successive cosine cycles, each started from the one before (stochastic weight averaging, Izmailov
/// et al. 2018: cycle ends lie in one basin, and their average sits nearer its flat centre than any of them).
/// It is a single network of the same size and speed, unlike an ensemble, which runs every member.
/// </summary>
public static class WeightAveraging
{
    /// <summary>
    /// The average of <paramref name="models"/> as a new in-memory package named <paramref name="name"/>.
    /// Batch-norm running statistics are averaged like the weights (as the training's EMA does with them).
    /// The metadata is the last model's (its recipe and data), listing the members, counting as trained on
    /// every split any member trained on, with the members' epochs and training time summed.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than two models, or models that differ in architecture,
    /// classes or input normalization (their weights would not mean the same thing).</exception>
    public static EmotionModel Average(IReadOnlyList<EmotionModel> models, string name)
    {
        ArgumentNullException.ThrowIfNull(models);
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (models.Count < 2) throw new ArgumentException("averaging needs at least two models");
        var first = models[0].Metadata;
        foreach (var model in models.Skip(1))
        {
            var m = model.Metadata;
            var place = model.Path ?? m.Name;
            if (m.Architecture != first.Architecture)
            {
                throw new ArgumentException($"{place}: architecture '{m.Architecture}' differs from '{first.Architecture}'; only weights of one architecture can be averaged");
            }
            if (!m.ClassNames.SequenceEqual(first.ClassNames))
            {
                throw new ArgumentException($"{place}: classes [{string.Join(", ", m.ClassNames)}] differ from [{string.Join(", ", first.ClassNames)}]");
            }
            if (m.Normalization != first.Normalization)
            {
                throw new ArgumentException($"{place}: input normalization {m.Normalization} differs from {first.Normalization}; its weights expect other inputs");
            }
        }

        var network = ModelRegistry.Get(first.Architecture).Create(first.ClassNames.Count);
        // A running mean: the k-th member (from 0) joins with weight 1/(k+1); counters end as the last member's.
        for (var k = 0; k < models.Count; k++)
        {
            WeightMixing.MixInto(network, models[k].Network, keep: k / (k + 1.0));
        }

        var last = models[^1].Metadata;
        var splits = Enum.GetValues<DataSplit>().Where(s => models.Any(m => m.Metadata.TrainedOn(s))).Select(s => s.ToString()).ToArray();
        var metadata = last with
        {
            Name = name,
            AveragedFrom = models.Select(m => new AveragedModel(m.Metadata.Name, m.Metadata.WeightsSha256)).ToArray(),
            Dataset = last.Dataset is { } dataset ? dataset with { Splits = splits } : null,
            WeightsDtype = "float32",
            WeightsSha256 = null,
            Metrics = [],
            // The members' training together, not the last member's alone (null when any member's is unknown).
            Epochs = models.All(m => m.Metadata.Epochs.HasValue) ? models.Sum(m => m.Metadata.Epochs!.Value) : null,
            TrainingSeconds = models.All(m => m.Metadata.TrainingSeconds.HasValue) ? models.Sum(m => m.Metadata.TrainingSeconds!.Value) : null,
            Created = DateTimeOffset.UtcNow,
        };
        return new EmotionModel(metadata, network);
    }

    /// <summary>
    /// Replaces every batch norm's running statistics with the mean and variance of its inputs over
    /// <paramref name="faces"/> (unaugmented, in batches of <paramref name="batchSize"/>). The statistics of an
    /// average of weights are not the average of the members' statistics, since each layer's inputs change with
    /// the layers before it; SWA recomputes them in one pass over the training data. Call it before the model's
    /// first prediction (which freezes folded copies of the batch norms).
    /// </summary>
    /// <returns>How many batch-norm layers were recomputed (0 for a network without any).</returns>
    public static int RecomputeBatchNorm(EmotionModel model, FaceDataset faces, int batchSize = 256, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(faces);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (faces.Count == 0) throw new ArgumentException("no faces to recompute batch-norm statistics on");
        var norms = model.Network.modules().OfType<BatchNorm>().ToList();
        if (norms.Count == 0) return 0;
        var momenta = norms.Select(n => n.momentum).ToList();
        try
        {
            foreach (var norm in norms)
            {
                norm.reset_running_stats();
                norm.train(); // only the batch norms: dropout stays off
            }
            using var noGrad = no_grad();
            using var all = faces.ToTensor();
            for (int start = 0, batch = 0; start < faces.Count; start += batchSize, batch++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                using var scope = NewDisposeScope();
                // A momentum of 1/(k+1) at the k-th batch makes the running values the plain mean over all batches.
                foreach (var norm in norms) norm.momentum = 1.0 / (batch + 1);
                model.Network.forward(model.Preprocess(all.narrow(0, start, Math.Min(batchSize, faces.Count - start))));
            }
        }
        finally
        {
            for (var i = 0; i < norms.Count; i++)
            {
                norms[i].momentum = momenta[i];
                norms[i].eval();
            }
        }
        var splits = string.Join(" + ", faces.SplitsPresent);
        model.UpdateMetadata(m => m with { BatchNormStatistics = $"recomputed on {faces.Count:N0} unaugmented faces ({splits})" });
        return norms.Count;
    }
}
