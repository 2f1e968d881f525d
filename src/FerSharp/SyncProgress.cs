namespace FerSharp;

/// <summary>
/// An <see cref="IProgress{T}"/> that reports on the reporting thread, in order. <see cref="Progress{T}"/>
/// posts each report to the thread pool (or a synchronization context), so a progress bar or a test could
/// see them late or out of order.
/// </summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
