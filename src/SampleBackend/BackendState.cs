namespace SampleBackend;

/// <summary>What an instance is and how it currently behaves; changed at run time through /admin.</summary>
public sealed class BackendState(string name, bool healthy, int delayMs)
{
    private volatile bool _healthy = healthy;
    private volatile int _delayMs = delayMs;
    private volatile int _failStatus;
    private long _served;
    private long _received;

    public string Name { get; } = name;

    public bool Healthy
    {
        get => _healthy;
        set => _healthy = value;
    }

    /// <summary>Added before every workload response, to play a slow server.</summary>
    public int DelayMs
    {
        get => _delayMs;
        set => _delayMs = value;
    }

    /// <summary>When not 0, every workload request is answered with this status (a failing but reachable server).</summary>
    public int FailStatus
    {
        get => _failStatus;
        set => _failStatus = value;
    }

    public long Served => Interlocked.Read(ref _served);

    /// <summary>Workload requests that arrived, counted before anything can fail: what reached this backend at all.</summary>
    public long Received => Interlocked.Read(ref _received);

    public void CountServed() => Interlocked.Increment(ref _served);

    public void CountReceived() => Interlocked.Increment(ref _received);
}
