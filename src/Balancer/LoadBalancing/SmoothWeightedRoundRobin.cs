using System.Runtime.CompilerServices;

namespace Balancer.LoadBalancing;

/// <summary>
/// NGINX's smooth weighted round robin, unrolled into one period of picks.
/// </summary>
/// <remarks>
/// Running the classic algorithm per request needs every destination's running score updated together,
/// which means a lock on the request path. The sequence it produces is periodic (period = sum of the
/// weights divided by their GCD), so we compute one period once per membership change and let requests
/// walk it with a single atomic increment. The build costs one step per destination per position of the
/// period, so it is used only while that stays under <see cref="MaxBuildSteps"/>; larger clusters, or weights
/// whose period is long, are picked by <see cref="EarliestDeadlineFirst"/> instead.
/// </remarks>
public static class SmoothWeightedRoundRobin
{
    /// <summary>The largest period times destination count unrolled: about a tenth of a millisecond of work.</summary>
    public const long MaxBuildSteps = 1 << 17;

    /// <summary>Whether the period of <paramref name="weights"/> is short enough to unroll (see <see cref="MaxBuildSteps"/>).</summary>
    public static bool FitsUnrolled(ReadOnlySpan<int> weights)
    {
        // Every reduced weight is at least 1, so the period is at least the count: a large cluster never fits, and
        // a change in one need not walk its weights to learn that.
        if ((long)weights.Length * weights.Length > MaxBuildSteps)
        {
            return false;
        }

        var gcd = 0;
        long total = 0;
        foreach (var w in weights)
        {
            gcd = Gcd(gcd, w);
            total += w;
        }

        return gcd == 0 || (total / gcd) * weights.Length <= MaxBuildSteps;
    }

    /// <summary>Returns one period of the pick order as indices into <paramref name="weights"/>.</summary>
    [MethodImpl(PerChangeCode.Optimized)]
    public static int[] BuildSchedule(ReadOnlySpan<int> weights)
    {
        if (weights.IsEmpty)
        {
            return [];
        }

        var gcd = 0;
        foreach (var w in weights)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(w, 1, nameof(weights));
            gcd = Gcd(gcd, w);
        }

        var reduced = new int[weights.Length];
        var total = 0;
        for (var i = 0; i < weights.Length; i++)
        {
            reduced[i] = weights[i] / gcd;
            total += reduced[i];
        }

        var current = new int[weights.Length];
        var schedule = new int[total];
        for (var step = 0; step < total; step++)
        {
            var best = 0;
            for (var i = 0; i < reduced.Length; i++)
            {
                current[i] += reduced[i];
                if (current[i] > current[best])
                {
                    best = i;
                }
            }

            current[best] -= total;
            schedule[step] = best;
        }

        return schedule;
    }

    private static int Gcd(int a, int b)
    {
        while (b != 0)
        {
            (a, b) = (b, a % b);
        }

        return a;
    }
}
