using System.Diagnostics;

using TorchSharp;

using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// One training epoch's randomness and running sums: the data order, the augmentation and dropout generators,
/// and the loss and accuracy totals its metrics are made of. A mid-epoch checkpoint saves it
/// (<see cref="Snapshot"/>) and a resumed run restores it, so the rest of the epoch draws exactly what it would
/// have drawn uninterrupted; the order needs no saving, being re-drawn from its seed.
/// </summary>
internal sealed class EpochRun : IDisposable
{
    private readonly Stopwatch _watch = Stopwatch.StartNew();
    private readonly double _secondsBefore;
    private double _lossSum;
    private long _correct;
    private long _seen;

    public EpochRun(long sampleCount, EpochSeeds seeds, EpochInProgress? resumed)
    {
        Dropout = new Generator().manual_seed(seeds.Dropout);
        Augment = new Generator().manual_seed(seeds.Augment);
        using (var orderGenerator = new Generator().manual_seed(seeds.Order))
        {
            Order = randperm(sampleCount, generator: orderGenerator);
        }
        if (resumed != null)
        {
            Restore(Augment, resumed.AugmentGenerator);
            Restore(Dropout, resumed.DropoutGenerator);
            (FirstBatch, _lossSum, _correct, _seen, _secondsBefore) =
                (resumed.Batches, resumed.LossSum, resumed.Correct, resumed.Seen, resumed.Seconds);
        }
    }

    public Generator Dropout { get; }
    public Generator Augment { get; }
    /// <summary>The epoch's permutation of the training samples.</summary>
    public Tensor Order { get; }
    /// <summary>The batch to train first: 0, or where a resumed epoch had got to.</summary>
    public int FirstBatch { get; }

    /// <summary>Training seconds of the epoch so far, those before a resume included.</summary>
    public double Seconds => _secondsBefore + _watch.Elapsed.TotalSeconds;
    public double MeanLoss => _lossSum / _seen;
    public double Accuracy => (double)_correct / _seen;
    public double ImagesPerSecond => _seen / Seconds;
    public long Seen => _seen;

    /// <summary>Adds one batch; the loss is the batch mean, in single precision as libtorch returns it.</summary>
    public void Add(float meanLoss, long correct, int count)
    {
        _lossSum += meanLoss * count;
        _correct += correct;
        _seen += count;
    }

    /// <summary>What a mid-epoch checkpoint keeps after <paramref name="batchesDone"/> batches.</summary>
    public EpochInProgress Snapshot(int batchesDone) => new()
    {
        Batches = batchesDone,
        LossSum = _lossSum,
        Correct = _correct,
        Seen = _seen,
        Seconds = Seconds,
        AugmentGenerator = State(Augment),
        DropoutGenerator = State(Dropout),
    };

    public void Dispose()
    {
        Order.Dispose();
        Augment.Dispose();
        Dropout.Dispose();
    }

    private static byte[] State(Generator generator)
    {
        using var state = generator.get_state();
        return state.data<byte>().ToArray();
    }

    private static void Restore(Generator generator, byte[] bytes)
    {
        using var state = tensor(bytes);
        generator.set_state(state);
    }
}

/// <summary>The seeds of an epoch's three random streams, derived from the run's seed and the epoch number.</summary>
internal readonly record struct EpochSeeds(long Dropout, long Order, long Augment);
