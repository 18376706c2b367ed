using System.Runtime.CompilerServices;

namespace Balancer.LoadBalancing;

/// <summary>How the code that runs once per change over every destination of a cluster is compiled.</summary>
internal static class PerChangeCode
{
    /// <summary>
    /// Fully optimized at its first call and never compiled again: for the loops over every destination that run once per
    /// change of a cluster (its available list, its policy's snapshot, round-robin order and IpHash table), not per request.
    /// </summary>
    /// <remarks>
    /// Tiered compilation counts calls, and such code is called once per change: it runs unoptimized for its first 30
    /// calls, instrumented for the next 30, optimized after that. Each unoptimized version, in the first call that loops
    /// over thousands of destinations, compiles an optimized copy of the method there and then (on-stack replacement), on
    /// the thread making the change. At 10,000 destinations, with the proxy pinned to one CPU, the first health change
    /// after the benchmark's 40 drains compiled four of them so (16 ms of JIT) and held every request then in flight for
    /// about 12 ms (docs/benchmarks.md). Compiled once, at the cluster's first build at start-up, none of it waits for a
    /// change; what it gives up is profile-guided optimization, which array loops like these barely use.
    /// </remarks>
    public const MethodImplOptions Optimized = MethodImplOptions.AggressiveOptimization;
}
