using System.Net;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Xunit.Abstractions;

namespace Balancer.Tests.HighAvailability;

/// <summary>
/// Failover of the floating address between two balancers run by real keepalived, under steady GET load
/// from a client host (4 clients, one request each every 20 ms, 5 s timeout).
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class KeepalivedFailoverTests(KeepalivedPair pair, ITestOutputHelper output) : IClassFixture<KeepalivedPair>
{
    private const int Clients = 4;
    private static readonly TimeSpan Pace = TimeSpan.FromMilliseconds(20);

    [NamespaceFact]
    public async Task KillNine_OfTheActiveBalancer_AddressMoves_RequestsSucceedAgainWithin3s()
    {
        await using var load = FailoverLoad.Start(pair.Client, Clients, Pace);
        var active = await pair.SteadyAsync(load);
        var peer = KeepalivedPair.Peer(active);

        var killed = load.Now;
        output.WriteLine($"kill -9 at {DateTime.UtcNow:HH:mm:ss.fff}");
        pair.Balancer(active).Signal("KILL");
        await Poll.UntilAsync(() => pair.Holder() == peer, TimeSpan.FromSeconds(10), $"{peer} to take {KeepalivedPair.FloatingAddress}");
        var moved = load.Now;
        await Poll.UntilAsync(() => load.SucceededSince(moved) >= 100, TimeSpan.FromSeconds(10), "requests through the new holder");
        var cost = load.CostSince(killed);

        Report("kill -9", active, cost, moved - killed);
        Assert.True(cost.Recovery <= TimeSpan.FromSeconds(3), $"Requests failed for {cost.Recovery.TotalSeconds:0.00} s after kill -9:{Environment.NewLine}{string.Join(Environment.NewLine, cost.Failures)}{Environment.NewLine}{pair.Transitions()}");
        await RestoreAsync(active, load);
    }

    [NamespaceFact]
    public async Task Sigterm_OfTheActiveBalancer_AddressMovesBeforeItStops_NoRequestFails()
    {
        await using var load = FailoverLoad.Start(pair.Client, Clients, Pace);
        var active = await pair.SteadyAsync(load);
        var peer = KeepalivedPair.Peer(active);

        var terminated = load.Now;
        var signalled = DateTime.UtcNow;
        output.WriteLine($"SIGTERM at {signalled:HH:mm:ss.fff}");
        pair.Balancer(active).Signal("TERM");
        await Poll.UntilAsync(() => pair.Holder() == peer, TimeSpan.FromSeconds(10), $"{peer} to take {KeepalivedPair.FloatingAddress}");
        var moved = load.Now;
        Assert.False(pair.Balancer(active).HasExited, "The balancer stopped before keepalived moved the address: Balancer:Shutdown:DrainDelay is too short for the track script.");
        Assert.True(await pair.Balancer(active).WaitForExitAsync(TimeSpan.FromSeconds(40)), "The balancer did not exit after its drain.");
        var exited = load.Now;
        await Poll.UntilAsync(() => load.SucceededSince(exited) >= 100, TimeSpan.FromSeconds(10), "requests after the old balancer exited");
        var cost = load.CostSince(terminated);

        Report("SIGTERM", active, cost, moved - terminated);
        output.WriteLine($"the track file said 1 {(pair.ReleasedAt(active) - signalled)?.TotalSeconds:0.00} s after SIGTERM");
        // Readiness turns first; the old balancer stops taking new connections (attempts are dropped, so clients try
        // again a second later, by then at the new holder), lets requests on open connections arrive, and then tells
        // keepalived to move the address through its track file; it answers what it received after the move
        // (Balancer:Shutdown:FloatingAddress). No connection is caught half-open by the move.
        Assert.True(cost.Failed == 0, $"{cost.Failed} of {cost.Requests} requests failed after SIGTERM:{Environment.NewLine}{string.Join(Environment.NewLine, cost.Failures)}{Environment.NewLine}{pair.Transitions()}");
        await RestoreAsync(active, load);
    }

    [NamespaceFact]
    public async Task ActiveBalancer_AllBackendsUnreachable_GivesTheAddressToItsPeer_KeepsItAwayWhenBack()
    {
        await using var load = FailoverLoad.Start(pair.Client, Clients, Pace);
        var active = await pair.SteadyAsync(load);
        var peer = KeepalivedPair.Peer(active);
        var ns = pair.Lab.NamespaceOf(active);

        // Only the active balancer loses its route to the backend host; its peer still reaches it.
        var cut = load.Now;
        pair.Lab.Run(ns, "ip", "route", "add", "prohibit", KeepalivedPair.Subnet + "10/32");
        try
        {
            await Poll.UntilAsync(() => pair.Holder() == peer, TimeSpan.FromSeconds(20), $"{peer} to take {KeepalivedPair.FloatingAddress}");
            var moved = load.Now;
            Assert.Equal(HttpStatusCode.ServiceUnavailable, await pair.ReadyzAsync(active));
            await Poll.UntilAsync(() => load.SucceededSince(moved) >= 100, TimeSpan.FromSeconds(10), "requests through the peer");
            Report("backends unreachable", active, load.CostSince(cut), moved - cut);
        }
        finally
        {
            pair.Lab.Run(ns, "ip", "route", "del", "prohibit", KeepalivedPair.Subnet + "10/32");
        }

        // Ready again, it waits as the backup: nopreempt leaves the address where it serves.
        await Poll.UntilAsync(async () => await pair.ReadyzAsync(active) == HttpStatusCode.OK && pair.LastState(active) == "BACKUP", TimeSpan.FromSeconds(20), $"{active} ready and BACKUP again");
        var back = load.Now;
        await Poll.UntilAsync(() => load.SucceededSince(back) >= 150, TimeSpan.FromSeconds(10), "requests after the recovery");
        Assert.Equal(peer, pair.Holder());
        Assert.Equal(0, load.CostSince(back).Failed);
    }

    private async Task RestoreAsync(string lb, FailoverLoad load)
    {
        await pair.Balancer(lb).DisposeAsync();
        pair.StartBalancer(lb);
        await pair.SteadyAsync(load);
    }

    private void Report(string what, string lb, FailoverLoad.Cost cost, TimeSpan addressMoved)
    {
        output.WriteLine($"{what} of {lb}: address moved after {addressMoved.TotalSeconds:0.00} s; {cost.Failed} of {cost.Requests} requests failed; requests succeed again {cost.Recovery.TotalSeconds:0.00} s after it; the slowest that succeeded took {cost.Slowest.TotalSeconds:0.00} s");
        foreach (var failure in cost.Failures)
        {
            output.WriteLine("  failed at " + failure);
        }

        output.WriteLine(pair.Transitions());
    }
}
