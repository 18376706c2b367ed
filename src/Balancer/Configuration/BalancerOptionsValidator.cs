using Balancer.LoadBalancing;

namespace Balancer.Configuration;

/// <summary>
/// Validates the <c>Balancer</c> section: its own keys here, each nested section by the validator of its options
/// class, and reports every error at once so that an operator fixes the file in one pass.
/// </summary>
internal sealed class BalancerOptionsValidator(OptionsSource source) : OptionsValidator<BalancerOptions>(source)
{
    protected override void Check(BalancerOptions options, OptionErrors errors)
    {
        var https = false;
        var listen = errors.Source.Section.GetSection(nameof(options.Listen));
        if (listen.Value is not null || listen.GetChildren().Any())
        {
            foreach (var (key, text) in ListenAddress.Read(listen))
            {
                if (!ListenAddress.TryParse(text, out var address, out var reason))
                {
                    errors.AddAt(key, reason!);
                }
                else
                {
                    https |= address!.IsHttps;
                }
            }
        }

        CheckTrustedProxies(options, errors);
        errors.PositiveTimeSpan(options.ShutdownTimeout);
        errors.WholeNumber(options.ReloadNice, 0, 19);
        if (!string.IsNullOrWhiteSpace(options.StateFile))
        {
            ConfigChecks.FileToWrite(errors, nameof(options.StateFile), options.StateFile, "name a file in it, such as state.json");
        }

        errors.Nested(options.Tls, s => new Tls.TlsOptionsValidator(s, https));
        errors.Nested(options.Management, s => new ManagementOptionsValidator(s));
        errors.Nested(options.Discovery, s => new Discovery.DiscoveryOptionsValidator(s));
        errors.Nested(options.Retry, s => new Resilience.RetryOptionsValidator(s));
        errors.Nested(options.CircuitBreaker, s => new Resilience.CircuitBreakerOptionsValidator(s));
        errors.Nested(options.OutlierDetection, s => new Health.OutlierDetectionOptionsValidator(s));
        errors.Nested(options.ActiveHealthChecks, s => new Health.ActiveHealthCheckOptionsValidator(s));
        errors.Nested(options.Shutdown, s => new Readiness.ShutdownOptionsValidator(s));
        errors.Nested(options.Limits, s => new Hosting.LimitsOptionsValidator(s));
        errors.Nested(options.Tracing, s => new Telemetry.TracingOptionsValidator(s));
        errors.Nested(options.Metrics, s => new Telemetry.MetricsOptionsValidator(s));
        errors.Nested(options.AccessLog, s => new AccessLog.AccessLogOptionsValidator(s));
        errors.Nested(options.RateLimit, s => new RateLimiting.RateLimitOptionsValidator(s));
    }

    private static void CheckTrustedProxies(BalancerOptions options, OptionErrors errors)
    {
        var trusted = errors.Source.Section.GetSection(nameof(options.TrustedProxies));
        if (!string.IsNullOrEmpty(trusted.Value))
        {
            // A bare string binds to an empty list and would trust nobody, silently.
            errors.Add(nameof(options.TrustedProxies), $"must be a list such as [\"{trusted.Value}\"], not a single string");
        }

        // The binder fills the list in the order of the section's children, so each item has its child's key.
        var keys = trusted.GetChildren().Select(c => c.Path).ToList();
        for (var i = 0; i < options.TrustedProxies.Count && i < keys.Count; i++)
        {
            if (!ClientIpResolver.TryParseNetwork(options.TrustedProxies[i], out _))
            {
                errors.AddAt(keys[i], $"'{options.TrustedProxies[i]}' is not an IP address or CIDR range such as 10.0.0.0/8");
            }
        }
    }
}

/// <summary>The <c>Balancer:Management</c> section.</summary>
internal sealed class ManagementOptionsValidator(OptionsSource source) : OptionsValidator<ManagementOptions>(source)
{
    protected override void Check(ManagementOptions options, OptionErrors errors)
    {
        if (errors.Source.Raw(nameof(options.Listen)) is not null)
        {
            if (!ListenAddress.TryParse(options.Listen, out var address, out var reason))
            {
                errors.Add(nameof(options.Listen), reason!);
            }
            else if (address!.Scheme != Uri.UriSchemeHttp)
            {
                errors.Add(nameof(options.Listen), $"'{options.Listen}' must be an http:// address; the management listener speaks HTTP/1.1 without TLS");
            }
        }

        var token = options.Token;
        if (!string.IsNullOrEmpty(token)
            && (token.Length < ManagementOptions.MinTokenLength || token.Any(char.IsWhiteSpace) || token.Any(char.IsControl)))
        {
            // Never the value itself: errors are logged and shown in /status.
            errors.Add(nameof(options.Token), $"must be at least {ManagementOptions.MinTokenLength} characters without spaces; generate one with `openssl rand -hex 32`");
        }

    }
}
