using System.Buffers;
using System.Runtime.CompilerServices;

namespace Balancer.LoadBalancing;

/// <summary>
/// Weighted round robin whose cost does not depend on the size of the weights: earliest deadline first
/// over a binary heap, the order large clusters are picked in.
/// </summary>
/// <remarks>
/// A destination of weight w is due for its n-th pick at n / w; each pick takes the destination due first
/// (ties to the lower index) and moves it to its next deadline. After any number of picks P, every
/// destination has had its share P·w/W within one pick, like the unrolled smooth schedule, but a pick costs
/// O(log N) and a build O(N) instead of one period of sum-of-weights steps. Deadlines are compared as
/// whole-number fractions by cross multiplication, so the order is exact and the same in every process.
/// Picks change the heap, so they take a lock; it is held for one sift of a few dozen comparisons.
/// </remarks>
public sealed class EarliestDeadlineFirst
{
    private readonly int[] _weights;

    // The n-th pick of a destination is due at n / w, so n fits in an int (4 bytes a destination less, rebuilt with
    // every change at scale); at int.MaxValue picks of one destination the order starts again, as after a change.
    private readonly int[] _due;
    private readonly int[] _heap;

    // The destinations ordered: the arrays may be longer (a cluster's arrays reused from an earlier snapshot, see
    // DestinationSet), and only their first _count places belong to this order.
    private readonly int _count;
    private readonly bool _everyoneFirst;
    private readonly int _restartAt;
    private readonly Lock _gate = new();

    /// <param name="weights">The weights, each at least 1.</param>
    public EarliestDeadlineFirst(ReadOnlySpan<int> weights)
        : this(weights, everyoneFirst: false)
    {
    }

    /// <param name="weights">The weights, each at least 1.</param>
    /// <param name="everyoneFirst">
    /// Whether every destination is due once at time zero before the weighted order starts, so that a
    /// fixed number of picks reaches each destination at least once.
    /// </param>
    internal EarliestDeadlineFirst(ReadOnlySpan<int> weights, bool everyoneFirst, int restartAt = int.MaxValue)
        : this(weights.ToArray(), weights.Length, new int[weights.Length], new int[weights.Length], everyoneFirst, restartAt)
    {
    }

    [MethodImpl(PerChangeCode.Optimized)]
    private EarliestDeadlineFirst(int[] weights, int count, int[] due, int[] heap, bool everyoneFirst, int restartAt = int.MaxValue)
    {
        _weights = weights;
        _count = count;
        _due = due;
        _heap = heap;
        _everyoneFirst = everyoneFirst;
        _restartAt = restartAt;
        for (var i = 0; i < count; i++)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(weights[i], 1, nameof(weights));
        }

        Start();
    }

    /// <summary>Every destination due for its first pick, the heap ordered for it.</summary>
    [MethodImpl(PerChangeCode.Optimized)]
    private void Start()
    {
        var heaviest = 0;
        for (var i = 0; i < _count; i++)
        {
            heaviest = Math.Max(heaviest, _weights[i]);
            _heap[i] = i;
        }

        // Every destination due at once, so the order starts by the due time alone: a sorted array is a heap, and since
        // ties go to the lower index, any heap of these deadlines gives the same picks. Everyone due at zero: the
        // indices in order. Everyone due at 1/w: heaviest first, by counting the weights when they are few compared to
        // the destinations (a cluster of thousands, rebuilt on every change: no comparison, O(N + largest weight)).
        Array.Fill(_due, _everyoneFirst ? 0 : 1, 0, _count);
        if (_everyoneFirst)
        {
            return;
        }

        if (heaviest <= CountingSortFactor * _count)
        {
            HeaviestFirst(heaviest);
            return;
        }

        for (var i = _count / 2 - 1; i >= 0; i--)
        {
            SiftDown(i);
        }
    }

    /// <summary>Weights no larger than this many times the number of destinations are sorted by counting them.</summary>
    private const int CountingSortFactor = 8;

    /// <summary>Fills the heap with the indices, heaviest first and, among equal weights, lowest index first.</summary>
    [MethodImpl(PerChangeCode.Optimized)]
    private void HeaviestFirst(int heaviest)
    {
        var next = ArrayPool<int>.Shared.Rent(heaviest + 1);
        try
        {
            Array.Clear(next, 0, heaviest + 1);
            for (var i = 0; i < _count; i++)
            {
                next[_weights[i]]++;
            }

            // Where each weight's run starts, the heaviest at the front.
            var start = 0;
            for (var weight = heaviest; weight >= 1; weight--)
            {
                var count = next[weight];
                next[weight] = start;
                start += count;
            }

            for (var i = 0; i < _count; i++)
            {
                _heap[next[_weights[i]]++] = i;
            }
        }
        finally
        {
            ArrayPool<int>.Shared.Return(next);
        }
    }

    /// <summary>
    /// An order over the first <paramref name="count"/> of <paramref name="weights"/> itself rather than a copy, for a
    /// caller that never changes them while the order is in use (a destination snapshot's weights), kept in
    /// <paramref name="due"/> and <paramref name="heap"/> (at least <paramref name="count"/> long), which the caller may
    /// have had from an earlier order no one uses any more: at scale, no array of a cluster's size is allocated per change.
    /// Whatever those arrays held, the order starts as a new one over these weights does.
    /// </summary>
    internal static EarliestDeadlineFirst Over(int[] weights, int count, int[] due, int[] heap) => new(weights, count, due, heap, everyoneFirst: false);

    public int Count => _count;

    /// <summary>Comparisons made so far (build and picks): the measure of work tests bound instead of wall time.</summary>
    public long Comparisons { get; private set; }

    /// <summary>The index of the next destination in the weighted order.</summary>
    public int Next()
    {
        lock (_gate)
        {
            return NextUnlocked();
        }
    }

    /// <summary><see cref="Next"/> for a caller that owns the instance alone (a table being built).</summary>
    internal int NextUnlocked()
    {
        var top = _heap[0];
        if (_due[top] >= _restartAt)
        {
            Start();
            top = _heap[0];
        }

        _due[top]++;
        SiftDown(0);
        return top;
    }

    private void SiftDown(int at)
    {
        var heap = _heap;
        var count = _count;
        var item = heap[at];
        while (true)
        {
            var child = 2 * at + 1;
            if (child >= count)
            {
                break;
            }

            if (child + 1 < count && Earlier(heap[child + 1], heap[child]))
            {
                child++;
            }

            if (!Earlier(heap[child], item))
            {
                break;
            }

            heap[at] = heap[child];
            at = child;
        }

        heap[at] = item;
    }

    /// <summary>Whether <paramref name="a"/> is due before <paramref name="b"/>: a_due / a_w &lt; b_due / b_w, ties to the lower index.</summary>
    private bool Earlier(int a, int b)
    {
        Comparisons++;
        var left = (long)_due[a] * _weights[b];
        var right = (long)_due[b] * _weights[a];
        return left < right || (left == right && a < b);
    }
}
