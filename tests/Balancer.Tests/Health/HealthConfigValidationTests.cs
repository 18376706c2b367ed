using Balancer.Configuration;
using Microsoft.Extensions.Configuration;

namespace Balancer.Tests.Health;

[Trait("Category", "Unit")]
public sealed class HealthConfigValidationTests
{
    [Fact]
    public void BadRetryBreakerAndHealthSettings_AreRejected_NamingKeyAndReason()
    {
        var errors = ConfigValidator.Validate(Config(new()
        {
            ["Balancer:Retry:MaxAttempts"] = "-1",
            ["Balancer:Retry:MaxBufferedBodyBytes"] = "lots",
            ["Balancer:CircuitBreaker:FailureRatio"] = "1.5",
            ["Balancer:CircuitBreaker:MinimumThroughput"] = "1",
            ["Balancer:CircuitBreaker:BreakDuration"] = "00:00:00",
            ["ReverseProxy:Clusters:c:HealthCheck:Passive:Policy"] = "Sometimes",
            ["ReverseProxy:Clusters:c:HealthCheck:AvailableDestinationsPolicy"] = "Any",
        }));

        Assert.Equal(
        [
            "Balancer:Retry:MaxAttempts: '-1' must be a whole number from 0 to 10",
            "Balancer:Retry:MaxBufferedBodyBytes: 'lots' must be a whole number from 0 to 67108864",
            "Balancer:CircuitBreaker:MinimumThroughput: '1' must be a whole number from 2 to 2147483647",
            "Balancer:CircuitBreaker:BreakDuration: must be positive, not '00:00:00'",
            "Balancer:CircuitBreaker:FailureRatio: '1.5' must be a number above 0 and at most 1",
            "ReverseProxy:Clusters:c:HealthCheck:Passive:Policy: unknown policy 'Sometimes'; use one of FirstFailure, TransportFailureRate",
            "ReverseProxy:Clusters:c:HealthCheck:AvailableDestinationsPolicy: unknown policy 'Any'; use one of HealthyAndUnknown, HealthyOrPanic",
        ], errors);
    }

    [Fact]
    public void ClusterWithoutHealthSettings_GetsFirstFailurePassiveChecksAndNoPanicMode()
    {
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, """{ "ReverseProxy": { "Clusters": { "c": { "Destinations": { "A": { "Address": "http://127.0.0.1:5001/" } } } } } }""");
            var data = ConfigFile.Read(path).Data!;
            Assert.Equal("true", data["ReverseProxy:Clusters:c:HealthCheck:Passive:Enabled"]);
            Assert.Equal("FirstFailure", data["ReverseProxy:Clusters:c:HealthCheck:Passive:Policy"]);
            Assert.Equal("HealthyAndUnknown", data["ReverseProxy:Clusters:c:HealthCheck:AvailableDestinationsPolicy"]);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static IConfiguration Config(Dictionary<string, string?> values)
    {
        values["ReverseProxy:Clusters:c:Destinations:A:Address"] = "http://127.0.0.1:5001/";
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }
}
