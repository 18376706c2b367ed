using System.Collections;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>
/// An available list of every destination of a list of all but a few, read through that list instead of copied from it:
/// a drain or a health Down in a cluster of 10,000 makes this object and the positions left out (tens of bytes) rather
/// than a new array of 9,999 references (80 KB, held by YARP's cluster state until the next change, so the young
/// collections copy it).
/// </summary>
/// <remarks>
/// Immutable, like the arrays it replaces: neither the list of all (an array <see cref="RuntimeAvailableDestinations"/>
/// makes once per list of all destinations and never changes) nor the positions change after it is made, so a request
/// may hold it for as long as it likes. Reading place <c>i</c> steps over the positions left out before it, at most
/// <see cref="MaxLeftOut"/>; walking the whole list is cheapest through <see cref="CopyTo"/> or the enumerator.
/// </remarks>
internal sealed class AvailableList(DestinationState[] all, int[] leftOut) : IReadOnlyList<DestinationState>
{
    /// <summary>More left out than this, and the available list is an array of its own (each place read would step over them all).</summary>
    public const int MaxLeftOut = 8;

    public int Count { get; } = all.Length - leftOut.Length;

    public DestinationState this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
            foreach (var left in leftOut)
            {
                if (left > index)
                {
                    break;
                }

                index++;
            }

            return all[index];
        }
    }

    /// <summary>Copies the list into <paramref name="into"/> (at least <see cref="Count"/> long), a run between two positions left out at a time.</summary>
    public void CopyTo(Span<DestinationState> into)
    {
        var from = 0;
        var to = 0;
        foreach (var left in leftOut)
        {
            all.AsSpan(from, left - from).CopyTo(into[to..]);
            to += left - from;
            from = left + 1;
        }

        all.AsSpan(from).CopyTo(into[to..]);
    }

    public IEnumerator<DestinationState> GetEnumerator()
    {
        var next = 0;
        for (var i = 0; i < all.Length; i++)
        {
            if (next < leftOut.Length && leftOut[next] == i)
            {
                next++;
                continue;
            }

            yield return all[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
