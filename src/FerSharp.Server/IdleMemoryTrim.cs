using System.Runtime.InteropServices;

namespace FerSharp.Server;

/// <summary>
/// Hands the native memory freed by a burst of recognitions back to the system once the server goes quiet.
/// ONNX Runtime, OpenCV and image decoding allocate their buffers through the C library, whose allocator keeps
/// freed blocks in per-thread arenas: after a burst served by many pool threads, resident memory stays at the
/// burst's level. glibc's <c>malloc_trim</c> returns those pages; it runs only when no recognition holds a slot
/// and some finished since the last check, so it never competes with a request. A no-op where the C library has no
/// <c>malloc_trim</c> (not glibc, not Linux).
/// </summary>
public sealed partial class IdleMemoryTrim : IDisposable
{
    private readonly InferenceGate _gate;
    private readonly Timer _timer;
    private long _finishedAtLastCheck;
    private int _trimming;
    private bool _unavailable = !OperatingSystem.IsLinux();

    public IdleMemoryTrim(InferenceGate gate, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(gate);
        _gate = gate;
        _timer = new Timer(_ => TrimIfIdle(), null, period, period);
    }

    /// <summary>
    /// Hands freed memory back now if no recognition holds a slot and some finished since the last trim; true when
    /// it did. The timer calls this every period.
    /// </summary>
    public bool TrimIfIdle()
    {
        if (_unavailable || Interlocked.Exchange(ref _trimming, 1) == 1) return false;
        try
        {
            var finished = _gate.Finished;
            if (_gate.Running > 0 || finished == _finishedAtLastCheck) return false;
            _finishedAtLastCheck = finished;
            MallocTrim(0);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            _unavailable = true;
            return false;
        }
        finally
        {
            Volatile.Write(ref _trimming, 0);
        }
    }

    public void Dispose() => _timer.Dispose();

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
