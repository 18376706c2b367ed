namespace Balancer.Telemetry;

/// <summary>
/// One forwarding attempt, found through the request's features: by the response hook of the metrics, and
/// by the access log once the request is done (the last attempt is the one the client got).
/// </summary>
internal sealed class ProxyAttempt(DestinationMetrics destination, long start)
{
    public DestinationMetrics Destination { get; } = destination;

    public long Start { get; } = start;

    /// <summary>Set by the first call of the hook: an attempt counts once, whatever YARP does after.</summary>
    public bool Recorded { get; set; }

    /// <summary>The destination answered (headers arrived); false for a transport failure.</summary>
    public bool HasResponse { get; set; }

    /// <summary>Request body bytes sent to the destination.</summary>
    public long RequestBytes { get; private set; }

    /// <summary>Response body bytes received from the destination and passed on to the client.</summary>
    public long ResponseBytes { get; private set; }

    // One request's body is read or written by one party at a time: no atomics needed for its own sums.
    public void AddRequestBytes(long bytes)
    {
        RequestBytes += bytes;
        Destination.AddRequestBytes(bytes);
    }

    public void AddResponseBytes(long bytes)
    {
        ResponseBytes += bytes;
        Destination.AddResponseBytes(bytes);
    }
}
