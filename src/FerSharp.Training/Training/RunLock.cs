using System.Globalization;

namespace FerSharp.Training;

/// <summary>
/// Keeps a second process from training in a run folder while another one does. Long runs live in the
/// background for hours, so starting <c>--resume</c> again while one is still going is an easy mistake, and
/// the two would overwrite each other's checkpoints, history and package. The lock is the kernel's (an
/// exclusive <c>flock</c>, which .NET takes for <see cref="FileShare.None"/>), so it ends with its process,
/// however that ends, and never goes stale.
/// </summary>
public sealed class RunLock : IDisposable
{
    /// <summary>The lock file's name in a run folder. It stays after a run: deleting it would let a process that
    /// opened it just before lock a file no longer in the folder while another locks a new one.</summary>
    public const string FileName = "train.lock";

    /// <summary>The holder's process id and start time, beside the lock: .NET cannot read a file another process
    /// holds exclusively.</summary>
    public const string HolderFileName = "train.lock.holder";

    private readonly FileStream _stream;

    private RunLock(FileStream stream) => _stream = stream;

    /// <summary>Takes the run folder's lock, creating the folder if needed.</summary>
    /// <exception cref="RunLockedException">another process (or another trainer in this one) holds it.</exception>
    public static RunLock Acquire(string runDirectory)
    {
        Directory.CreateDirectory(runDirectory);
        FileStream stream;
        try
        {
            stream = new FileStream(Path.Combine(runDirectory, FileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException ex) when (ex is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new RunLockedException(runDirectory, Holder(runDirectory), ex);
        }
        try
        {
            AtomicFile.WriteAllText(Path.Combine(runDirectory, HolderFileName), string.Create(CultureInfo.InvariantCulture,
                $"pid {Environment.ProcessId}, started {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} UTC\n"));
        }
        catch
        {
            stream.Dispose(); // a failed write (disk full) must not leave the folder locked until a finalizer runs
            throw;
        }
        return new RunLock(stream);
    }

    /// <summary>
    /// Fails early when the folder is being trained; the trainer takes the lock itself, so this only spares the
    /// caller work (loading data) that would end in that error.
    /// </summary>
    public static void ThrowIfHeld(string runDirectory)
    {
        if (Directory.Exists(runDirectory)) Acquire(runDirectory).Dispose();
    }

    /// <summary>
    /// The id of the live process that holds the folder's lock, or null when none does. It looks, without taking
    /// the lock (a status query must never make a starting run fail), for the recorded holder among the
    /// processes and for the lock file among that process's open files (Linux <c>/proc</c>; elsewhere a live
    /// recorded holder counts).
    /// </summary>
    public static int? TrainingProcess(string runDirectory)
    {
        if (PidOf(Holder(runDirectory)) is not { } pid) return null;
        var lockPath = Path.GetFullPath(Path.Combine(runDirectory, FileName));
        var fds = $"/proc/{pid}/fd";
        if (Directory.Exists("/proc/self/fd"))
        {
            try
            {
                return Directory.EnumerateFileSystemEntries(fds).Any(fd => new FileInfo(fd).LinkTarget == lockPath) ? pid : null;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return null; // the process is gone (or not ours to look at)
            }
        }
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return process.HasExited ? null : pid;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The holder as it wrote itself down, or null when that cannot be read.</summary>
    private static string? Holder(string runDirectory)
    {
        try
        {
            return File.ReadLines(Path.Combine(runDirectory, HolderFileName)).FirstOrDefault()?.Trim() is { Length: > 0 } line ? line : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The process id in a holder line ("pid 123, started …").</summary>
    internal static int? PidOf(string? holder) =>
        holder is not null && holder.StartsWith("pid ", StringComparison.Ordinal)
            && int.TryParse(holder[4..].Split(',')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
            ? pid
            : null;

    public void Dispose() => _stream.Dispose();
}

/// <summary>A run folder is being trained by another process.</summary>
public sealed class RunLockedException(string runDirectory, string? holder, Exception inner)
    : IOException(Describe(runDirectory, holder), inner)
{
    public string RunDirectory { get; } = runDirectory;

    private static string Describe(string runDirectory, string? holder)
    {
        var who = holder is null ? "another process" : $"another process ({holder})";
        var pid = RunLock.PidOf(holder)?.ToString(CultureInfo.InvariantCulture) ?? "<pid>";
        return $"{runDirectory} is being trained by {who}; wait for it to finish, or stop it with `kill -TERM {pid}` " +
            "(it checkpoints first) and continue with --resume";
    }
}
