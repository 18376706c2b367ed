namespace Balancer.Health;

/// <summary>
/// The marks an active health probe carries on its request: that it is a probe (the outbound circuit breaker
/// lets it through, since the probe is the judge of recovery), and its attempt (timed, or skipped because its
/// destination is in maintenance: then it never leaves the process and its result is dropped before any health
/// policy sees it).
/// </summary>
/// <remarks>
/// A probe is a request of its own type (<see cref="ProbeMessage"/>) rather than a request option: every
/// proxied request passes the checks, and a type test is all they cost, where asking a request for its
/// options creates its options dictionary.
/// </remarks>
internal static class ProbeMarks
{
    public static bool IsProbe(HttpRequestMessage request) => request is ProbeMessage { Attempt: not null };

    public static bool IsSkipped(HttpRequestMessage? request) => request is ProbeMessage { Attempt.Skipped: true };

    public static ProbeAttempt? AttemptOf(HttpRequestMessage request) => (request as ProbeMessage)?.Attempt;

    public static void Mark(ProbeMessage request, ProbeAttempt attempt) => request.Attempt = attempt;
}

/// <summary>The request of an active health probe, with its attempt once marked.</summary>
internal class ProbeMessage : HttpRequestMessage
{
    public ProbeMessage(HttpMethod method, Uri? uri)
        : base(method, uri)
    {
    }

    public ProbeAttempt? Attempt { get; set; }

    /// <summary>
    /// <paramref name="request"/> (as YARP's probe factory built it) as a probe: itself if it is one, otherwise
    /// a copy with the same method, address, version, headers and content, the original disposed.
    /// </summary>
    public static ProbeMessage From(HttpRequestMessage request)
    {
        if (request is ProbeMessage probe)
        {
            return probe;
        }

        var copy = new ProbeMessage(request.Method, request.RequestUri)
        {
            Version = request.Version,
            VersionPolicy = request.VersionPolicy,
            Content = request.Content,
        };
        foreach (var header in request.Headers)
        {
            copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
        }

        foreach (var option in request.Options)
        {
            ((IDictionary<string, object?>)copy.Options)[option.Key] = option.Value;
        }

        // The content moved to the copy; disposing the original must not dispose it.
        request.Content = null;
        request.Dispose();
        return copy;
    }
}
