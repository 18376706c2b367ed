using Balancer.LoadBalancing;
using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>
/// Checks a whole configuration before it is allowed to serve. Every error names the key and the reason,
/// and all errors are reported at once so an operator fixes the file in one pass.
/// </summary>
/// <remarks>
/// The <c>Balancer</c> section is bound to its options classes and each is checked by its own
/// <see cref="Microsoft.Extensions.Options.IValidateOptions{TOptions}"/>, so a key is named once, by its property.
/// The <c>ReverseProxy</c> section is YARP's schema: checked here as written, for the messages an operator needs
/// (YARP's own validation still runs when it applies the config).
/// </remarks>
public static class ConfigValidator
{
    public static IReadOnlyList<string> Validate(IConfiguration config)
    {
        var (options, source) = OptionsBinding.Bind(config.GetSection(BalancerOptions.SectionName), static c => c.Get<BalancerOptions>());
        var errors = new BalancerOptionsValidator(source).Validate(null, options).FailuresOrNone().ToList();

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

            CheckRouteRateLimit(route.GetSection("Metadata"), errors);

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

        var (health, healthSource) = OptionsBinding.Bind(cluster.GetSection("HealthCheck"), static c => c.Get<Health.HealthCheckSection>());
        errors.AddRange(new Health.HealthCheckConfigValidator(healthSource).Validate(null, health).FailuresOrNone());
        CheckPositiveTimeSpan(cluster.GetSection("HttpRequest:ActivityTimeout"), errors);
        CheckPositiveTimeSpan(cluster.GetSection("Metadata:" + Resilience.ConnectTimeout.MetadataKey), errors);
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
            CheckDiscovery(destination, errors);
            var weight = destination.GetSection("Metadata:" + DestinationWeight.MetadataKey);
            if (weight.Value is not null && !DestinationWeight.TryParse(weight.Value, out _, out var reason))
            {
                errors.Add($"{weight.Path}: {reason}");
            }
        }
    }

    /// <summary>DNS discovery looks up the host of the address: it must be a name, and Dns the only kind.</summary>
    private static void CheckDiscovery(IConfigurationSection destination, List<string> errors)
    {
        var discovery = destination.GetSection("Metadata:" + Discovery.DiscoveringDestinationResolver.MetadataKey);
        if (discovery.Value is null)
        {
            return;
        }

        if (!string.Equals(discovery.Value, Discovery.DiscoveringDestinationResolver.Dns, StringComparison.OrdinalIgnoreCase))
        {
            errors.Add($"{discovery.Path}: {ConfigChecks.NotOneOf("discovery", discovery.Value, [Discovery.DiscoveringDestinationResolver.Dns])}");
        }
        else if (Uri.TryCreate(destination["Address"], UriKind.Absolute, out var address) && address.HostNameType is not UriHostNameType.Dns)
        {
            errors.Add($"{destination.Path}:Address: discovery by DNS needs a host name to look up, not '{address.Host}'");
        }
    }

    private static void CheckSlowStart(IConfigurationSection section, List<string> errors)
    {
        if (section.Value is not null && !Runtime.SlowStart.TryParse(section.Value, out _, out var reason))
        {
            errors.Add($"{section.Path}: {reason}");
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

    /// <summary>A route's own limits: the <c>Balancer:RateLimit</c> keys, prefixed, in its metadata.</summary>
    private static void CheckRouteRateLimit(IConfigurationSection metadata, List<string> errors)
    {
        const string prefix = RateLimiting.RateLimitOptions.RouteMetadataPrefix;
        var limits = metadata.GetChildren()
            .Where(m => m.Key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            .ToDictionary(m => "Limits:" + m.Key[prefix.Length..], m => m.Value);
        if (limits.Count == 0)
        {
            return;
        }

        var section = new ConfigurationBuilder().AddInMemoryCollection(limits).Build().GetSection("Limits");
        var (options, source) = OptionsBinding.Bind(section, static c => c.Get<RateLimiting.RateLimitOptions>(), metadata.Path + ":" + prefix);
        errors.AddRange(new RateLimiting.RateLimitOptionsValidator(source).Validate(null, options).FailuresOrNone());
    }

    private static void CheckHttpUrl(IConfigurationSection section, List<string> errors)
    {
        if (!Uri.TryCreate(section.Value, UriKind.Absolute, out var uri) ||
            (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            errors.Add($"{section.Path}: '{section.Value}' is not an absolute http:// or https:// URL");
        }
    }

    /// <summary>A time span of YARP's config, which has no options class of ours: checked as written.</summary>
    private static void CheckPositiveTimeSpan(IConfigurationSection section, List<string> errors)
    {
        var converted = TimeSpan.TryParse(section.Value, System.Globalization.CultureInfo.InvariantCulture, out var value);
        if (ConfigChecks.TimeSpanError(section.Value, converted, value, zeroAllowed: false) is { } reason)
        {
            errors.Add($"{section.Path}: {reason}");
        }
    }

    private static void CheckOneOf(IConfigurationSection section, string[] allowed, List<string> errors, string what = "policy")
    {
        if (section.Value is { } value && !allowed.Contains(value, StringComparer.OrdinalIgnoreCase))
        {
            errors.Add($"{section.Path}: {ConfigChecks.NotOneOf(what, value, allowed)}");
        }
    }
}
