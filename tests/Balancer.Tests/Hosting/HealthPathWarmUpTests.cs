using Balancer.Hosting;

namespace Balancer.Tests.Hosting;

/// <summary>The start-up run of the health path: a destination of its own Down and Up again through the tracker's whole path.</summary>
[Trait("Category", "Unit")]
public sealed class HealthPathWarmUpTests
{
    [Fact]
    public void Run_TakesItsOwnDestinationDownAndUp_ThroughRecordLogSignalAvailableListAndRamp()
    {
        var report = HealthPathWarmUp.Run();

        // Up, then Down (two flaps counted in all): one of the two left available, its signal fired; Up again: both, ramping; three log lines formatted;
        // the available list computed in full once (the Down), then from the announced change alone (the Up).
        Assert.Equal(new HealthPathWarmUp.Report(LastTransition: "Up", Flaps: 2, AvailableWhileDown: 1, Signalled: true, AvailableAfter: 2, Ramping: true, LogLines: 3, FullPasses: 1), report);
    }
}
