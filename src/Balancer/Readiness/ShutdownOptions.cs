namespace Balancer.Readiness;

/// <summary>The <c>Balancer:Shutdown</c> section: how the instance leaves.</summary>
public sealed class ShutdownOptions
{
    public const string SectionName = "Shutdown";

    /// <summary>
    /// After SIGTERM (or SIGINT), how long <c>/readyz</c> answers 503 while the proxy still serves new and
    /// in-flight requests, before it stops accepting and drains (<c>Balancer:ShutdownTimeout</c>). Long enough
    /// for keepalived's track script or a Kubernetes endpoint update to move clients to a peer. Zero stops
    /// accepting at once. Read at start-up.
    /// </summary>
    public TimeSpan DrainDelay { get; set; } = TimeSpan.FromSeconds(5);
}
