namespace FerSharp.Server;

/// <summary>
/// Bounds concurrent recognitions: up to N run, up to M wait, the rest are refused at once so an overloaded
/// server answers 503 quickly instead of queueing without limit.
/// </summary>
public sealed class InferenceGate : IDisposable
{
    private readonly SemaphoreSlim _slots;
    private readonly int _maxQueued;
    private int _waiting;

    public InferenceGate(int concurrency, int maxQueued)
    {
        _slots = new SemaphoreSlim(Math.Max(1, concurrency));
        _maxQueued = Math.Max(0, maxQueued);
    }

    /// <summary>A lease to release when done, or null when the queue is full.</summary>
    public async Task<IDisposable?> TryEnterAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _waiting) > _maxQueued + _slots.CurrentCount)
        {
            Interlocked.Decrement(ref _waiting);
            return null;
        }
        try
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
        return new Lease(_slots);
    }

    public void Dispose() => _slots.Dispose();

    private sealed class Lease(SemaphoreSlim slots) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) slots.Release();
        }
    }
}
