using System.Security.Cryptography;
using System.Text;

using static TorchSharp.torch;

namespace FerSharp.Training;

/// <summary>
/// The offline teacher targets of a run (<see cref="TrainOptions.DistillOffline"/>), kept in its checkpoints
/// folder so that <c>--resume</c> reads them back instead of running every teacher over the training faces again:
/// six large teachers take half an hour on two cores, paid again at each resume otherwise. The file names what
/// it was computed from (the teachers' weights and flip averaging, the training faces in order); anything else
/// is recomputed, never trusted.
/// </summary>
internal sealed class TeacherTargetsCache
{
    private const string Magic = "FerSharp teacher targets v1";
    private readonly string _path;
    private readonly string _key;

    /// <param name="path">The cache file.</param>
    /// <param name="teachers">What the teachers are (<see cref="DistillationTeacher.TargetsIdentity"/>).</param>
    /// <param name="pixels">The training faces in the run's index order.</param>
    public TeacherTargetsCache(string path, string teachers, ReadOnlySpan<byte> pixels)
        : this(path, $"{teachers}|faces sha256 {Convert.ToHexStringLower(SHA256.HashData(pixels))}")
    {
    }

    private TeacherTargetsCache(string path, string key)
    {
        _path = path;
        _key = key;
    }

    /// <summary>The cache file.</summary>
    public string FilePath => _path;

    /// <summary>
    /// The same targets kept in a folder shared by runs (<see cref="Trainer.TeacherTargetsCacheDirectory"/>): the
    /// file is named by a hash of what they were computed from, and still checked against it when read.
    /// </summary>
    public TeacherTargetsCache SharedIn(string folder) =>
        new(Path.Combine(folder, $"teacher-targets-{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(_key)))[..24]}.bin"), _key);

    public static string PathIn(string runDirectory) => Path.Combine(runDirectory, "checkpoints", "teacher-targets.bin");

    /// <summary>
    /// The saved targets [<paramref name="faces"/>, <paramref name="classes"/>], or null (with the reason in
    /// <paramref name="why"/>) when there is no file or it was computed from something else or is damaged.
    /// </summary>
    public Tensor? TryLoad(int faces, int classes, out string why)
    {
        if (!File.Exists(_path))
        {
            why = "none saved";
            return null;
        }
        try
        {
            using var reader = new BinaryReader(File.OpenRead(_path), Encoding.UTF8);
            if (reader.ReadString() != Magic)
            {
                why = "not a teacher targets file";
                return null;
            }
            if (reader.ReadString() != _key)
            {
                why = "computed from other teachers or other training faces";
                return null;
            }
            var rows = reader.ReadInt32();
            var columns = reader.ReadInt32();
            if (rows != faces || columns != classes)
            {
                why = $"{rows}x{columns} targets, {faces}x{classes} needed";
                return null;
            }
            var values = new float[(long)rows * columns];
            var bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan());
            reader.BaseStream.ReadExactly(bytes);
            if (reader.BaseStream.Position != reader.BaseStream.Length)
            {
                why = "longer than its targets";
                return null;
            }
            why = "";
            return tensor(values, new long[] { rows, columns });
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or FormatException)
        {
            why = $"unreadable ({e.Message})";
            return null;
        }
    }

    /// <summary>Writes <paramref name="targets"/> (float32 [faces, classes]) atomically.</summary>
    public void Save(Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(targets);
        using var contiguous = targets.to(ScalarType.Float32).contiguous();
        var values = contiguous.data<float>().ToArray();
        if (Path.GetDirectoryName(_path) is { Length: > 0 } folder) Directory.CreateDirectory(folder);
        AtomicFile.Write(_path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            writer.Write(Magic);
            writer.Write(_key);
            writer.Write(checked((int)contiguous.shape[0]));
            writer.Write(checked((int)contiguous.shape[1]));
            writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
        });
    }
}
