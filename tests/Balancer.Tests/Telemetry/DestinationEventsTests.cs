using Balancer.Telemetry;

namespace Balancer.Tests.Telemetry;

[Trait("Category", "Unit")]
public sealed class DestinationEventsTests
{
    [Fact]
    public void RetryReasons_CreatedAtStartUp_AreExactlyTheReasonsARetryIsCountedWith()
    {
        // A local socket shortage is answered with a 503 and never retried, so it has no retry series.
        var counted = Enum.GetValues<FailureKind>().Where(k => k is not (FailureKind.None or FailureKind.Local)).Select(TransportFailure.Label);

        Assert.Equal(counted.Order(StringComparer.Ordinal), DestinationEvents.RetryReasons.Order(StringComparer.Ordinal));
    }
}
