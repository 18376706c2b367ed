using Balancer.Resilience;
using Balancer.Telemetry;

namespace Balancer.Tests.Telemetry;

[Trait("Category", "Unit")]
public sealed class DestinationEventsTests
{
    [Fact]
    public void RetryReasons_CreatedAtStartUp_AreExactlyTheReasonsARetryIsCountedWith()
    {
        var counted = Enum.GetValues<FailureKind>().Where(k => k != FailureKind.None).Select(TransportFailure.Label);

        Assert.Equal(counted.Order(StringComparer.Ordinal), DestinationEvents.RetryReasons.Order(StringComparer.Ordinal));
    }
}
