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
    private int _running;
    private long _finished;

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
        return new Lease(this);
    }

    /// <summary>Recognitions holding a slot now.</summary>
    public int Running => Volatile.Read(ref _running);

    /// <summary>Recognitions that have released their slot since the gate was made.</summary>
    public long Finished => Interlocked.Read(ref _finished);

    public void Dispose() => _slots.Dispose();

    private sealed class Lease : IDisposable
    {
        private readonly InferenceGate _gate;
        private int _released;

        public Lease(InferenceGate gate)
        {
            _gate = gate;
            Interlocked.Increment(ref gate._running);
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0) return;
            Interlocked.Decrement(ref _gate._running);
            Interlocked.Increment(ref _gate._finished);
            _gate._slots.Release();
        }
    }
}
