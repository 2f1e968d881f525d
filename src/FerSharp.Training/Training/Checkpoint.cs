using System.Text;
using System.Text.Json;

using FerSharp.Models;

namespace FerSharp.Training;

/// <summary>Everything besides tensors that a resumed run needs to continue exactly where it stopped.</summary>
public sealed record TrainingState
{
    public required TrainOptions Options { get; init; }
    /// <summary>Last completed epoch (1-based).</summary>
    public int Epoch { get; init; }
    public required List<EpochMetrics> History { get; init; }
    public double BestMonitored { get; init; }
    public int BestEpoch { get; init; }
    public int EpochsWithoutImprovement { get; init; }
    public required LrScheduleState Schedule { get; init; }
    public required Normalization Normalization { get; init; }
    public required IReadOnlyList<string> ClassNames { get; init; }
    public DatasetFingerprint? Dataset { get; init; }
    /// <summary>Weights checksum of the distillation teacher the run started with (null: no teacher, or none recorded).</summary>
    public string? TeacherWeightsSha256 { get; init; }
    public double ElapsedSeconds { get; init; }
    public bool Stopped { get; init; }
    /// <summary>Set in a mid-epoch checkpoint: how far the run had got into the epoch after <see cref="Epoch"/>.</summary>
    public EpochInProgress? InProgress { get; init; }
}

/// <summary>
/// The part of an epoch a mid-epoch checkpoint holds: the batches already trained, the running sums the epoch's
/// metrics are made of, and the states of the epoch's augmentation and dropout generators, so that the rest of
/// the epoch draws what it would have drawn uninterrupted (the data order is re-drawn from the epoch's seed).
/// </summary>
public sealed record EpochInProgress
{
    public int Batches { get; init; }
    public double LossSum { get; init; }
    public long Correct { get; init; }
    public long Seen { get; init; }
    /// <summary>Training seconds of the epoch so far, for its images-per-second figure.</summary>
    public double Seconds { get; init; }
    public required byte[] AugmentGenerator { get; init; }
    public required byte[] DropoutGenerator { get; init; }
}

/// <summary>
/// A checkpoint is one file (state JSON + model + EMA model + optimizer), written to a temp file and renamed,
/// so a crash mid-write leaves the previous checkpoint intact.
/// </summary>
public static class Checkpoint
{
    private static readonly byte[] Magic = "FERCKPT1"u8.ToArray();

    public static void Save(string path, TrainingState state, byte[] model, byte[]? emaModel, byte[] optimizer)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(optimizer);
        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            WriteBlock(writer, JsonSerializer.SerializeToUtf8Bytes(state, ModelMetadata.JsonOptions));
            WriteBlock(writer, model);
            WriteBlock(writer, emaModel ?? []);
            WriteBlock(writer, optimizer);
        });
    }

    public static (TrainingState State, byte[] Model, byte[]? EmaModel, byte[] Optimizer) Load(string path) =>
        Read(path, reader =>
        {
            var state = ReadState(reader);
            var model = ReadBlock(reader);
            var ema = ReadBlock(reader);
            var optimizer = ReadBlock(reader);
            return (state, model, ema.Length == 0 ? null : ema, optimizer);
        });

    /// <summary>The state alone, without reading the tensors (a checkpoint of a large network is tens of MB).</summary>
    public static TrainingState LoadState(string path) => Read(path, ReadState);

    private static T Read<T>(string path, Func<BinaryReader, T> read)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path}: no checkpoint to resume from", path);
        }
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            if (!reader.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic))
            {
                throw new InvalidDataException("not a FerSharp checkpoint");
            }
            return read(reader);
        }
        catch (Exception ex) when (ex is EndOfStreamException or JsonException or InvalidDataException)
        {
            throw new InvalidDataException($"{path}: checkpoint is corrupt or truncated ({ex.Message})", ex);
        }
    }

    private static TrainingState ReadState(BinaryReader reader) =>
        JsonSerializer.Deserialize<TrainingState>(ReadBlock(reader), ModelMetadata.JsonOptions)
            ?? throw new InvalidDataException("empty state");

    private static void WriteBlock(BinaryWriter writer, byte[] bytes)
    {
        writer.Write((long)bytes.Length);
        writer.Write(bytes);
    }

    private static byte[] ReadBlock(BinaryReader reader)
    {
        var length = reader.ReadInt64();
        if (length < 0 || length > reader.BaseStream.Length - reader.BaseStream.Position)
        {
            throw new InvalidDataException("block length out of range");
        }
        return reader.ReadBytes((int)length);
    }
}
