using System.Reflection;
using Balancer.Configuration;
using Microsoft.Extensions.Configuration;

namespace Balancer.Tests.Configuration;

/// <summary>
/// The <c>Balancer</c> section bound to its options classes and checked by their validators: every bad value
/// of a file at once, each under its own key, including values the binder alone would stop at.
/// </summary>
[Trait("Category", "Unit")]
public sealed class OptionsValidationTests
{
    [Fact]
    public void ValuesThatDoNotConvert_InOneSection_AreAllReported_WithTheRestOfTheFile()
    {
        var errors = ConfigValidator.Validate(Config(new()
        {
            ["Balancer:Retry:MaxAttempts"] = "many",
            ["Balancer:Retry:GrpcIdempotent"] = "maybe",
            ["Balancer:Retry:MaxBufferedBodyBytes"] = "-1",
            ["Balancer:Tls:Hsts:MaxAge"] = "1y",
            ["Balancer:Limits:MaxConcurrentConnections"] = "0",
            ["Balancer:Tracing:SampleRatio"] = "half",
        }));

        Assert.Equal(
        [
            "Balancer:Tls:Hsts:MaxAge: '1y' is not a time span of 0 or more such as 365.00:00:00",
            "Balancer:Retry:MaxAttempts: 'many' must be a whole number from 0 to 10",
            "Balancer:Retry:MaxBufferedBodyBytes: '-1' must be a whole number from 0 to 67108864",
            "Balancer:Retry:GrpcIdempotent: 'maybe' is not true or false",
            "Balancer:Limits:MaxConcurrentConnections: '0' must be a whole number from 1 to 2147483647",
            "Balancer:Tracing:SampleRatio: 'half' must be a number from 0 to 1",
        ], errors);
    }

    /// <summary>A key added to an options class is checked for its type before any check of its own is written.</summary>
    [Theory]
    [MemberData(nameof(TypedKeys))]
    public void EveryTypedKey_SetToText_IsRejectedNamingTheKey(string key)
    {
        var errors = ConfigValidator.Validate(Config(new() { [key] = "not-a-value" }));

        var error = Assert.Single(errors);
        Assert.StartsWith(key + ": 'not-a-value' ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void RouteRateLimits_AreCheckedByTheRateLimitOptionsValidator_UnderTheirMetadataKeys()
    {
        var errors = ConfigValidator.Validate(Config(new()
        {
            ["ReverseProxy:Routes:r:ClusterId"] = "c",
            ["ReverseProxy:Routes:r:Match:Path"] = "/{**all}",
            ["ReverseProxy:Routes:r:Metadata:RateLimit.RequestsPerSecond"] = "fast",
            ["ReverseProxy:Routes:r:Metadata:RateLimit.Burst"] = "-1",
            ["ReverseProxy:Routes:r:Metadata:Other"] = "anything",
        }));

        Assert.Equal(
        [
            "ReverseProxy:Routes:r:Metadata:RateLimit.RequestsPerSecond: 'fast' must be a number of requests a second from 0 to 1000000 (0: no rate limit)",
            "ReverseProxy:Routes:r:Metadata:RateLimit.Burst: '-1' must be a whole number from 0 to 1000000",
        ], errors);
    }

    /// <summary>Every property of <see cref="BalancerOptions"/> and its sections whose value is not text.</summary>
    public static TheoryData<string> TypedKeys()
    {
        var keys = new TheoryData<string>();
        Collect(typeof(BalancerOptions), BalancerOptions.SectionName, keys);
        return keys;
    }

    private static void Collect(Type type, string prefix, TheoryData<string> keys)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite))
        {
            var propertyType = Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            var key = $"{prefix}:{property.Name}";
            if (propertyType.IsValueType)
            {
                keys.Add(key);
            }
            else if (propertyType != typeof(string) && !typeof(System.Collections.IEnumerable).IsAssignableFrom(propertyType))
            {
                Collect(propertyType, key, keys);
            }
        }
    }

    private static IConfiguration Config(Dictionary<string, string?> values)
    {
        values["ReverseProxy:Clusters:c:Destinations:A:Address"] = "http://127.0.0.1:5001/";
        return new ConfigurationBuilder().AddInMemoryCollection(values).Build();
    }
}
