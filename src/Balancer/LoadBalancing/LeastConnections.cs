namespace Balancer.LoadBalancing;

/// <summary>Pure picking logic of the LeastConnections policy.</summary>
public static class LeastConnections
{
    /// <summary>
    /// Picks among the destinations with the smallest <c>inFlight[i] / weights[i]</c>, and breaks ties as NGINX
    /// does, by weighted round robin among the tied: it walks the smooth weighted round-robin
    /// <paramref name="schedule"/> from <paramref name="position"/> to the first tied destination. Each
    /// destination appears in a period of the schedule as often as its weight says, so tied destinations
    /// share the picks by weight, and one that is not tied never hands its turn to a particular neighbour.
    /// </summary>
    /// <returns>The index picked, and how many schedule positions to advance past it.</returns>
    public static (int Index, int Advance) Pick(ReadOnlySpan<int> inFlight, ReadOnlySpan<int> weights, ReadOnlySpan<int> schedule, uint position)
    {
        var best = 0;
        for (var i = 1; i < inFlight.Length; i++)
        {
            // a/wa < b/wb  <=>  a*wb < b*wa; longs so that large counts cannot overflow.
            if ((long)inFlight[i] * weights[best] < (long)inFlight[best] * weights[i])
            {
                best = i;
            }
        }

        var start = (int)(position % (uint)schedule.Length);
        for (var step = 0; step < schedule.Length; step++)
        {
            var slot = start + step;
            var candidate = schedule[slot >= schedule.Length ? slot - schedule.Length : slot];
            if ((long)inFlight[candidate] * weights[best] == (long)inFlight[best] * weights[candidate])
            {
                return (candidate, step + 1);
            }
        }

        // Unreachable for a schedule built from these weights (every destination has a slot).
        return (best, 1);
    }
}
