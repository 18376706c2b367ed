using Balancer.LoadBalancing;

namespace Balancer.Tests.LoadBalancing;

public sealed class LeastConnectionsTests
{
    [Fact]
    public void Pick_ReturnsTheDestinationWithFewestInFlight()
    {
        for (uint start = 0; start < 6; start++)
        {
            Assert.Equal(2, LeastConnections.Pick([5, 3, 1, 4], [1, 1, 1, 1], start));
        }
    }

    [Fact]
    public void Pick_DividesInFlightByWeight()
    {
        // 6/3 = 2 beats 3/1 = 3 and 5/2 = 2.5.
        Assert.Equal(0, LeastConnections.Pick([6, 3, 5], [3, 1, 2], 1));
    }

    [Fact]
    public void Pick_TiesRotateInsteadOfFavouringTheFirst()
    {
        var picks = Enumerable.Range(0, 6).Select(start => LeastConnections.Pick([2, 2, 2], [1, 1, 1], (uint)start)).ToArray();

        Assert.Equal([0, 1, 2, 0, 1, 2], picks);
    }

    [Fact]
    public void Pick_TieOnlyAmongMinimums_RotatesAmongThem()
    {
        var picks = Enumerable.Range(0, 4).Select(start => LeastConnections.Pick([1, 7, 1, 7], [1, 1, 1, 1], (uint)start)).ToArray();

        Assert.Equal([0, 2, 2, 0], picks);
    }

    [Fact]
    public void Policy_IdleDestinations_SplitsEvenly()
    {
        var policy = new LeastConnectionsPolicy();
        var cluster = new Yarp.ReverseProxy.Model.ClusterState("c");
        var destinations = Destinations.Make(("A", 1), ("B", 1), ("C", 1));

        var counts = Destinations.Count(300, () => policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!);

        Assert.Equal(new Dictionary<string, int> { ["A"] = 100, ["B"] = 100, ["C"] = 100 }, counts);
    }

    [Fact]
    public void Policy_BusyDestination_IsAvoided()
    {
        var policy = new LeastConnectionsPolicy();
        var cluster = new Yarp.ReverseProxy.Model.ClusterState("c");
        var destinations = Destinations.Make(("A", 1), ("B", 1), ("C", 1));
        destinations[0].ConcurrentRequestCount = 10;
        destinations[1].ConcurrentRequestCount = 3;
        destinations[2].ConcurrentRequestCount = 4;

        var picked = policy.PickDestination(new DefaultHttpContext(), cluster, destinations)!;

        Assert.Equal("B", picked.DestinationId);
    }
}
