using System.Runtime.CompilerServices;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Yarp.ReverseProxy.Model;

namespace Balancer.PerDestination;

/// <summary>
/// One <see cref="DestinationSlot"/> per destination, shared by every feature that keeps something per destination
/// (its metrics, health log, newest probe, Down signal, span endpoint), found through one weak table keyed by YARP's
/// <see cref="DestinationState"/>: a reload keeps the state of a destination it keeps, and a removed destination's
/// slot, with all it holds, goes when its state does.
/// </summary>
/// <remarks>
/// One table rather than one per feature: every entry of a <see cref="ConditionalWeakTable{TKey, TValue}"/> is a
/// dependent handle, and every gen0 collection scans every dependent handle however old. At 10,000 destinations six
/// tables were about 61,000 handles and most of a gen0 collection's pause (docs/benchmarks.md).
/// </remarks>
internal sealed class DestinationSlots
{
    private readonly ConditionalWeakTable<DestinationState, DestinationSlot> _slots = new();

    /// <summary>The slot of <paramref name="destination"/>, made on first use; lock-free afterwards.</summary>
    public DestinationSlot Of(DestinationState destination) =>
        _slots.TryGetValue(destination, out var slot) ? slot : _slots.GetValue(destination, static _ => new DestinationSlot());

    /// <summary>The slot of <paramref name="destination"/> if anything was ever kept for it.</summary>
    public DestinationSlot? Find(DestinationState destination) =>
        _slots.TryGetValue(destination, out var slot) ? slot : null;

    /// <summary>The number of slots alive (the table's dependent handles), for tests and benchmarks; walks the table.</summary>
    internal int Count()
    {
        var count = 0;
        foreach (var _ in (IEnumerable<KeyValuePair<DestinationState, DestinationSlot>>)_slots)
        {
            count++;
        }

        return count;
    }
}

/// <summary>
/// What the features keep for one destination, each in its own part named by a <see cref="SlotPart{T}"/> the feature
/// owns, so that this type names none of them.
/// </summary>
internal sealed class DestinationSlot
{
    private Parts _parts;

    /// <summary>The part if it was set.</summary>
    public T? Get<T>(SlotPart<T> part)
        where T : class =>
        Unsafe.As<T?>(Volatile.Read(ref _parts[part.Index]));

    /// <summary>The part, made by <paramref name="create"/> if it is not set yet; of two racing makers the first one stored wins.</summary>
    public T GetOrAdd<T, TState>(SlotPart<T> part, TState state, Func<TState, T> create)
        where T : class
    {
        ref var at = ref _parts[part.Index];
        if (Volatile.Read(ref at) is { } existing)
        {
            return Unsafe.As<T>(existing);
        }

        var made = create(state);
        return Unsafe.As<T>(Interlocked.CompareExchange(ref at, made, null) ?? made);
    }

    /// <summary>Puts <paramref name="value"/> in the part, replacing what was there.</summary>
    public void Set<T>(SlotPart<T> part, T value)
        where T : class =>
        Volatile.Write(ref _parts[part.Index], value);

    /// <summary>The parts inline in the slot: one object per destination, no array beside it.</summary>
    [InlineArray(SlotPart.Capacity)]
    private struct Parts
    {
        private object? _first;
    }
}

/// <summary>Numbers the parts of a <see cref="DestinationSlot"/>.</summary>
internal abstract class SlotPart
{
    /// <summary>
    /// How many parts a slot has room for; each feature's part is a static field, so the count is fixed: seven in use
    /// (metrics, span endpoint, health log, newest probe, failure count, Down signal, withdrawable client), room for the
    /// tests' own, which share the process's numbering.
    /// </summary>
    internal const int Capacity = 10;

    private static int _next = -1;

    private protected SlotPart()
    {
        Index = Interlocked.Increment(ref _next);
        if (Index >= Capacity)
        {
            throw new InvalidOperationException($"A destination slot has room for {Capacity} parts; raise {nameof(SlotPart)}.{nameof(Capacity)}.");
        }
    }

    internal int Index { get; }
}

/// <summary>A part of every <see cref="DestinationSlot"/> holding a <typeparamref name="T"/>; keep it in a static field.</summary>
internal sealed class SlotPart<T> : SlotPart
    where T : class;

internal static class DestinationSlotsServiceCollectionExtensions
{
    /// <summary>The one <see cref="DestinationSlots"/> of the process; each feature that keeps a part asks for it.</summary>
    public static IServiceCollection AddDestinationSlots(this IServiceCollection services)
    {
        services.TryAddSingleton<DestinationSlots>();
        return services;
    }
}
