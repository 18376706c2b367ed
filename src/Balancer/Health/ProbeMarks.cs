namespace Balancer.Health;

/// <summary>
/// The marks an active health probe carries on its request: that it is a probe (the outbound circuit breaker
/// lets it through, since the probe is the judge of recovery), and its attempt (timed, or skipped because its
/// destination is in maintenance: then it never leaves the process and its result is dropped before any health
/// policy sees it).
/// </summary>
internal static class ProbeMarks
{
    private static readonly HttpRequestOptionsKey<bool> Key = new("Balancer.HealthProbe");
    private static readonly HttpRequestOptionsKey<ProbeAttempt> AttemptKey = new("Balancer.HealthProbeAttempt");

    public static bool IsProbe(HttpRequestMessage request) => request.Options.TryGetValue(Key, out var probe) && probe;

    public static bool IsSkipped(HttpRequestMessage? request) => request is not null && AttemptOf(request) is { Skipped: true };

    public static ProbeAttempt? AttemptOf(HttpRequestMessage request) => request.Options.TryGetValue(AttemptKey, out var attempt) ? attempt : null;

    public static void Mark(HttpRequestMessage request, ProbeAttempt attempt)
    {
        request.Options.Set(Key, true);
        request.Options.Set(AttemptKey, attempt);
    }
}
