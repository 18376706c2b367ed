using Balancer.LoadBalancing;
using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>
/// Checks a whole configuration before it is allowed to serve. Every error names the key and the reason,
/// and all errors are reported at once so an operator fixes the file in one pass.
/// </summary>
public static class ConfigValidator
{
    public static IReadOnlyList<string> Validate(IConfiguration config)
    {
        var errors = new List<string>();
        var balancer = config.GetSection(BalancerOptions.SectionName);
        CheckListen(balancer.GetSection("Management:Listen"), errors);
        Tls.TlsValidation.Check(balancer, errors);
        CheckBool(balancer.GetSection("Management:AllowAnonymous"), errors);
        var token = balancer.GetSection("Management:Token");
        if (!string.IsNullOrEmpty(token.Value)
            && (token.Value.Length < ManagementOptions.MinTokenLength || token.Value.Any(char.IsWhiteSpace) || token.Value.Any(char.IsControl)))
        {
            // Never the value itself: errors are logged and shown in /status.
            errors.Add($"{token.Path}: must be at least {ManagementOptions.MinTokenLength} characters without spaces; generate one with `openssl rand -hex 32`");
        }

        var trusted = balancer.GetSection("TrustedProxies");
        if (!string.IsNullOrEmpty(trusted.Value))
        {
            // A bare string would bind to an empty list and trust nobody, silently.
            errors.Add($"{trusted.Path}: must be a list such as [\"{trusted.Value}\"], not a single string");
        }

        foreach (var proxy in trusted.GetChildren())
        {
            if (!ClientIpResolver.TryParseNetwork(proxy.Value, out _))
            {
                errors.Add($"{proxy.Path}: '{proxy.Value}' is not an IP address or CIDR range such as 10.0.0.0/8");
            }
        }

        CheckBool(balancer.GetSection("InlineCompletions"), errors);
        CheckInteger(balancer.GetSection("Retry:MaxAttempts"), 0, 10, errors);
        CheckInteger(balancer.GetSection("Retry:MaxBufferedBodyBytes"), 0, 64L * 1024 * 1024, errors);
        CheckBool(balancer.GetSection("Retry:GrpcIdempotent"), errors);
        var breaker = balancer.GetSection("CircuitBreaker");
        CheckBool(breaker.GetSection("Enabled"), errors);
        CheckInteger(breaker.GetSection("MinimumThroughput"), 2, int.MaxValue, errors);
        CheckPositiveTimeSpan(breaker.GetSection("SamplingDuration"), errors);
        CheckPositiveTimeSpan(breaker.GetSection("BreakDuration"), errors);
        CheckPositiveTimeSpan(breaker.GetSection("AttemptTimeout"), errors);
        CheckFraction(breaker.GetSection("FailureRatio"), zeroAllowed: false, errors);

        CheckPositiveTimeSpan(balancer.GetSection("OutlierDetection:MaxEjectionTime"), errors);
        CheckInteger(balancer.GetSection("OutlierDetection:MaxEjectionPercent"), 0, 100, errors);
        CheckInteger(balancer.GetSection("OutlierDetection:SuccessfulProbesToReturn"), 1, 100, errors);
        CheckPositiveTimeSpan(balancer.GetSection("ShutdownTimeout"), errors);
        CheckPositiveTimeSpan(balancer.GetSection("Shutdown:DrainDelay"), errors, zeroAllowed: true);
        CheckBool(balancer.GetSection("Shutdown:FloatingAddress"), errors);
        CheckBool(balancer.GetSection("Tracing:Detailed"), errors);
        CheckBool(balancer.GetSection("Metrics:Enabled"), errors);
        CheckBool(balancer.GetSection("Metrics:PerDestinationHistograms"), errors);
        CheckFraction(balancer.GetSection("Tracing:SampleRatio"), zeroAllowed: true, errors);
        CheckRate(balancer.GetSection("Tracing:MaxTracesPerSecond"), errors);

        CheckLimits(balancer.GetSection(Hosting.LimitsOptions.SectionName), errors);
        CheckAccessLog(balancer.GetSection(AccessLog.AccessLogOptions.SectionName), errors);
        CheckRateLimit(balancer.GetSection(RateLimiting.RateLimitOptions.SectionName), "", errors);
        CheckStateFile(balancer.GetSection("StateFile"), errors);

        // Unset or empty means tracing off; anything else must be a URL the OTLP exporter can send to.
        var otlpEndpoint = config.GetSection(Telemetry.TracingServiceCollectionExtensions.OtlpEndpointKey);
        if (!string.IsNullOrWhiteSpace(otlpEndpoint.Value))
        {
            CheckHttpUrl(otlpEndpoint, errors);
        }

        var proxyConfig = config.GetSection("ReverseProxy");
        var clusters = proxyConfig.GetSection("Clusters");
        var clusterIds = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var cluster in clusters.GetChildren())
        {
            clusterIds.Add(cluster.Key);
            CheckCluster(cluster, errors);
        }

        foreach (var route in proxyConfig.GetSection("Routes").GetChildren())
        {
            var clusterId = route["ClusterId"];
            if (string.IsNullOrWhiteSpace(clusterId))
            {
                errors.Add($"{route.Path}:ClusterId: is missing");
            }
            else if (!clusterIds.Contains(clusterId))
            {
                errors.Add($"{route.Path}:ClusterId: no cluster named '{clusterId}' (clusters: {string.Join(", ", clusterIds)})");
            }

            CheckRateLimit(route.GetSection("Metadata"), RateLimiting.RateLimitOptions.RouteMetadataPrefix, errors);

            var match = route.GetSection("Match");
            if (string.IsNullOrWhiteSpace(match["Path"]) && !match.GetSection("Hosts").GetChildren().Any())
            {
                errors.Add($"{route.Path}:Match: needs a Path or Hosts");
            }
        }

        return errors;
    }

    private static void CheckCluster(IConfigurationSection cluster, List<string> errors)
    {
        var policy = cluster.GetSection("LoadBalancingPolicy");
        if (policy.Value is { } name && !PolicyNames.All.Contains(name))
        {
            errors.Add($"{policy.Path}: unknown policy '{name}'; use one of {string.Join(", ", PolicyNames.All.Order(StringComparer.Ordinal))}");
        }

        var health = cluster.GetSection("HealthCheck");
        CheckPositiveTimeSpan(health.GetSection("Active:Interval"), errors);
        CheckPositiveTimeSpan(health.GetSection("Active:Timeout"), errors);
        CheckPositiveTimeSpan(health.GetSection("Passive:ReactivationPeriod"), errors);
        CheckPositiveTimeSpan(cluster.GetSection("HttpRequest:ActivityTimeout"), errors);
        CheckPositiveTimeSpan(cluster.GetSection("Metadata:" + Resilience.ConnectTimeout.MetadataKey), errors);
        CheckBool(health.GetSection("Active:Enabled"), errors);
        CheckOneOf(health.GetSection("Active:Policy"), ["ConsecutiveFailures"], errors);
        CheckOneOf(health.GetSection("Passive:Policy"), [Health.FirstFailurePassivePolicy.PolicyName, "TransportFailureRate"], errors);
        CheckOneOf(health.GetSection("AvailableDestinationsPolicy"), ["HealthyAndUnknown", "HealthyOrPanic"], errors);
        CheckBool(health.GetSection("Passive:Enabled"), errors);
        CheckGrpcHealth(cluster, errors);

        CheckSlowStart(cluster.GetSection("Metadata:" + Runtime.SlowStart.MetadataKey), errors);
        var destinations = cluster.GetSection("Destinations").GetChildren().ToList();
        if (destinations.Count == 0)
        {
            errors.Add($"{cluster.Path}:Destinations: a cluster needs at least one destination");
        }

        foreach (var destination in destinations)
        {
            CheckHttpUrl(destination.GetSection("Address"), errors);

            CheckSlowStart(destination.GetSection("Metadata:" + Runtime.SlowStart.MetadataKey), errors);
            var weight = destination.GetSection("Metadata:" + DestinationWeight.MetadataKey);
            if (weight.Value is not null && !DestinationWeight.TryParse(weight.Value, out _, out var reason))
            {
                errors.Add($"{weight.Path}: {reason}");
            }
        }
    }

    private static void CheckSlowStart(IConfigurationSection section, List<string> errors)
    {
        if (section.Value is not null && !Runtime.SlowStart.TryParse(section.Value, out _, out var reason))
        {
            errors.Add($"{section.Path}: {reason}");
        }
    }

    private static void CheckStateFile(IConfigurationSection section, List<string> errors)
    {
        if (!string.IsNullOrWhiteSpace(section.Value))
        {
            CheckFileToWrite(section, "name a file in it, such as state.json", errors);
        }
    }

    /// <summary>
    /// A gRPC health probe is an HTTP/2 call; so is all the cluster's traffic then, and YARP sends HTTP/1.1 to
    /// cleartext destinations unless the cluster asks for version 2.
    /// </summary>
    private static void CheckGrpcHealth(IConfigurationSection cluster, List<string> errors)
    {
        var protocol = cluster.GetSection("Metadata:" + Grpc.GrpcHealthProbe.ProtocolKey);
        CheckOneOf(protocol, [Grpc.GrpcHealthProbe.ProtocolHttp, Grpc.GrpcHealthProbe.ProtocolGrpc], errors, "protocol");
        if (!string.Equals(protocol.Value, Grpc.GrpcHealthProbe.ProtocolGrpc, StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        var version = cluster.GetSection("HttpRequest:Version");
        if (version.Value is not ("2" or "2.0"))
        {
            errors.Add($"{version.Path}: must be \"2\" when {protocol.Path} is {Grpc.GrpcHealthProbe.ProtocolGrpc}: gRPC needs HTTP/2 to the destinations");
        }

        var policy = cluster.GetSection("HttpRequest:VersionPolicy");
        var cleartext = cluster.GetSection("Destinations").GetChildren().Any(d => d["Address"]?.StartsWith("http://", StringComparison.OrdinalIgnoreCase) == true);
        if (cleartext && !string.Equals(policy.Value, nameof(HttpVersionPolicy.RequestVersionExact), StringComparison.OrdinalIgnoreCase)
            && !string.Equals(policy.Value, nameof(HttpVersionPolicy.RequestVersionOrHigher), StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{policy.Path}: must be \"RequestVersionExact\" when {protocol.Path} is {Grpc.GrpcHealthProbe.ProtocolGrpc} and a destination is http://: otherwise HTTP/1.1 is sent to cleartext destinations");
        }
    }

    private static void CheckLimits(IConfigurationSection limits, List<string> errors)
    {
        CheckInteger(limits.GetSection("MaxRequestHeadersTotalSize"), 1, int.MaxValue, errors);
        CheckInteger(limits.GetSection("MaxRequestHeaderCount"), 1, int.MaxValue, errors);
        CheckInteger(limits.GetSection("MaxRequestLineSize"), 1, int.MaxValue, errors);
        CheckInteger(limits.GetSection("MaxRequestBodySize"), 1, long.MaxValue, errors);
        CheckInteger(limits.GetSection("MaxConcurrentConnections"), 1, int.MaxValue, errors);
        CheckInteger(limits.GetSection("MaxConcurrentUpgradedConnections"), 1, int.MaxValue, errors);
        CheckPositiveTimeSpan(limits.GetSection("RequestHeadersTimeout"), errors);
        CheckPositiveTimeSpan(limits.GetSection("KeepAliveTimeout"), errors);
        foreach (var rate in new[] { "MinRequestBodyDataRate", "MinResponseDataRate" })
        {
            var section = limits.GetSection(rate);
            if (section.Value is { } text
                && (!double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) || value < 0 || !double.IsFinite(value)))
            {
                errors.Add($"{section.Path}: '{text}' must be a number of bytes per second, 0 or more (0 turns the check off)");
            }

            // Kestrel checks data rates on its once-a-second heartbeat, so it refuses a shorter grace period.
            var grace = limits.GetSection(rate + "GracePeriod");
            if (grace.Value is not null && TimeSpan.TryParse(grace.Value, System.Globalization.CultureInfo.InvariantCulture, out var period) && period <= TimeSpan.FromSeconds(1))
            {
                errors.Add($"{grace.Path}: must be longer than 1 second, not '{grace.Value}'");
            }
            else
            {
                CheckPositiveTimeSpan(grace, errors);
            }
        }
    }

    private static void CheckAccessLog(IConfigurationSection accessLog, List<string> errors)
    {
        CheckInteger(accessLog.GetSection("BufferLines"), 1, 10_000_000, errors);
        var path = accessLog.GetSection("Path");
        if (string.IsNullOrWhiteSpace(path.Value) || path.Value.Trim() == AccessLog.AccessLogOptions.StandardOutput)
        {
            return;
        }

        CheckFileToWrite(path, "name a file in it, or `stdout`", errors);
    }

    /// <summary>A file the balancer will create or replace: a valid path, not a directory, in a directory that exists.</summary>
    private static void CheckFileToWrite(IConfigurationSection path, string instead, List<string> errors)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path.Value!.Trim());
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            errors.Add($"{path.Path}: '{path.Value}' is not a file path ({e.Message})");
            return;
        }

        if (Directory.Exists(full))
        {
            errors.Add($"{path.Path}: '{path.Value}' is a directory; {instead}");
        }
        else if (!Directory.Exists(Path.GetDirectoryName(full)))
        {
            errors.Add($"{path.Path}: the directory of '{path.Value}' does not exist");
        }
    }

    /// <summary>The limit keys in <c>Balancer:RateLimit</c>, or prefixed <c>RateLimit.</c> in a route's metadata.</summary>
    private static void CheckRateLimit(IConfigurationSection section, string keyPrefix, List<string> errors)
    {
        CheckNumber(
            section.GetSection(keyPrefix + "RequestsPerSecond"),
            value => double.IsFinite(value) && value >= 0 && value <= 1_000_000,
            "must be a number of requests a second from 0 to 1000000 (0: no rate limit)",
            errors);
        CheckInteger(section.GetSection(keyPrefix + "Burst"), 0, 1_000_000, errors);
        CheckInteger(section.GetSection(keyPrefix + "MaxConcurrentPerClient"), 0, 1_000_000, errors);
    }

    private static void CheckHttpUrl(IConfigurationSection section, List<string> errors)
    {
        if (!Uri.TryCreate(section.Value, UriKind.Absolute, out var uri) ||
            (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add($"{section.Path}: '{section.Value}' is not an absolute http:// or https:// URL");
        }
    }

    private static void CheckListen(IConfigurationSection section, List<string> errors)
    {
        if (section.Value is not null && !ListenAddress.TryParse(section.Value, out _, out var reason))
        {
            errors.Add($"{section.Path}: {reason}");
        }
    }

    private static void CheckPositiveTimeSpan(IConfigurationSection section, List<string> errors, bool zeroAllowed = false)
    {
        if (section.Value is null)
        {
            return;
        }

        if (!TimeSpan.TryParse(section.Value, System.Globalization.CultureInfo.InvariantCulture, out var value))
        {
            errors.Add($"{section.Path}: '{section.Value}' is not a time span such as 00:00:02");
        }
        else if (value < TimeSpan.Zero || (value == TimeSpan.Zero && !zeroAllowed))
        {
            errors.Add($"{section.Path}: must be {(zeroAllowed ? "zero or positive" : "positive")}, not '{section.Value}'");
        }
    }

    private static void CheckInteger(IConfigurationSection section, long min, long max, List<string> errors)
    {
        if (section.Value is null)
        {
            return;
        }

        if (!long.TryParse(section.Value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            errors.Add($"{section.Path}: '{section.Value}' must be a whole number from {min} to {max}");
        }
    }

    private static void CheckOneOf(IConfigurationSection section, string[] allowed, List<string> errors, string what = "policy")
    {
        if (section.Value is { } value && !allowed.Contains(value, StringComparer.OrdinalIgnoreCase))
        {
            errors.Add($"{section.Path}: unknown {what} '{value}'; use one of {string.Join(", ", allowed)}");
        }
    }

    /// <summary>A number up to 1, from 0 or above it; NaN is no fraction either.</summary>
    private static void CheckFraction(IConfigurationSection section, bool zeroAllowed, List<string> errors) =>
        CheckNumber(
            section,
            value => value <= 1 && (zeroAllowed ? value >= 0 : value > 0),
            $"must be a number {(zeroAllowed ? "from 0 to 1" : "above 0 and at most 1")}",
            errors);

    private static void CheckRate(IConfigurationSection section, List<string> errors) =>
        CheckNumber(section, value => double.IsFinite(value) && value >= 0, "must be a number of traces a second, 0 or more (0: no cap)", errors);

    /// <summary>A number in invariant culture that <paramref name="valid"/> accepts, if the key is set at all.</summary>
    private static void CheckNumber(IConfigurationSection section, Func<double, bool> valid, string must, List<string> errors)
    {
        if (section.Value is not { } text)
        {
            return;
        }

        var parsed = double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value);
        if (!parsed || !valid(value))
        {
            errors.Add($"{section.Path}: '{text}' {must}");
        }
    }

    private static void CheckBool(IConfigurationSection section, List<string> errors)
    {
        if (section.Value is not null && !bool.TryParse(section.Value, out _))
        {
            errors.Add($"{section.Path}: '{section.Value}' is not true or false");
        }
    }
}
