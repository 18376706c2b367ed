namespace Balancer.LoadBalancing;

/// <summary>Pure picking logic of the LeastConnections policy.</summary>
public static class LeastConnections
{
    /// <summary>
    /// Returns the index with the smallest <c>inFlight[i] / weights[i]</c>. The scan starts at
    /// <paramref name="start"/> and keeps the first minimum it meets, so a rotating start spreads ties
    /// instead of always favouring the first destination (YARP's LeastRequests does the latter).
    /// </summary>
    public static int Pick(ReadOnlySpan<int> inFlight, ReadOnlySpan<int> weights, uint start)
    {
        var count = inFlight.Length;
        var best = (int)(start % (uint)count);
        var i = best;
        for (var step = 1; step < count; step++)
        {
            i = i + 1 == count ? 0 : i + 1;
            // a/wa < b/wb  <=>  a*wb < b*wa; longs so that large counts cannot overflow.
            if ((long)inFlight[i] * weights[best] < (long)inFlight[best] * weights[i])
            {
                best = i;
            }
        }

        return best;
    }
}
