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

    /// <summary>
    /// The same rule for clusters too large for an unrolled schedule, in one pass with no allocation: the
    /// smallest <c>inFlight[i] / weights[i]</c>, ties to the destination whose turn in <paramref name="turns"/> is
    /// due first. Turns run earliest deadline first by weight, so tied destinations share picks by weight.
    /// </summary>
    public static int PickAtScale(ReadOnlySpan<int> inFlight, ReadOnlySpan<int> weights, Turns turns)
    {
        var due = turns.Due;
        var best = 0;
        for (var i = 1; i < inFlight.Length; i++)
        {
            var load = (long)inFlight[i] * weights[best] - (long)inFlight[best] * weights[i];
            if (load < 0 || (load == 0 && (long)due[i] * weights[best] < (long)due[best] * weights[i]))
            {
                best = i;
            }
        }

        turns.Take(best, weights[best]);
        return best;
    }

    /// <summary>
    /// Whose turn it is among tied destinations: destination i's next turn is due at <c>Due[i] / weight</c>.
    /// Updated without a lock: two concurrent picks may take the same turn, which costs one repeated
    /// destination, as the pick-then-increment race of the in-flight counts already does.
    /// </summary>
    /// <remarks>
    /// A turn number fits an int (4 bytes a destination less, rebuilt with every change of a large cluster); when one
    /// would pass int.MaxValue, every destination's turns start again, as after a change.
    /// </remarks>
    public sealed class Turns
    {
        private readonly int _restartAt;
        private readonly int _count;
        private double _now;

        public Turns(int count)
            : this(count, int.MaxValue)
        {
        }

        internal Turns(int count, int restartAt)
            : this(new int[count], count, restartAt)
        {
        }

        private Turns(int[] due, int count, int restartAt)
        {
            _restartAt = restartAt;
            _count = count;
            Due = due;
            Array.Fill(Due, 1, 0, count);
        }

        /// <summary>
        /// Turns of <paramref name="count"/> destinations kept in <paramref name="due"/> (at least that long), which the
        /// caller may have had from earlier turns no one uses any more; they start as new turns do.
        /// </summary>
        internal static Turns Over(int[] due, int count) => new(due, count, int.MaxValue);

        /// <summary>Each destination's next turn; only the first <c>count</c> places are these turns' (the array may be longer).</summary>
        internal int[] Due { get; }

        internal void Take(int index, int weight)
        {
            // A destination that was not tied for a long time (busy) keeps no credit for the turns it missed:
            // it rejoins at the current time, else it would take every tie until it caught up.
            var now = Math.Max(_now, Due[index] / (double)weight);
            var next = Math.Max(Due[index], (long)(now * weight)) + 1;
            if (next >= _restartAt)
            {
                Array.Fill(Due, 1, 0, _count);
                _now = 0;
                return;
            }

            _now = now;
            Due[index] = (int)next;
        }
    }
}
