namespace SampleBackend;

/// <summary>What an instance is and how it currently behaves; changed at run time through /admin.</summary>
public sealed class BackendState(string name, bool healthy, int delayMs)
{
    private volatile bool _healthy = healthy;
    private volatile int _delayMs = delayMs;
    private long _served;

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

    public long Served => Interlocked.Read(ref _served);

    public void CountServed() => Interlocked.Increment(ref _served);
}
