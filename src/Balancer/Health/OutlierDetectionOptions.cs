namespace Balancer.Health;

/// <summary>
/// The <c>Balancer:OutlierDetection</c> section: how destinations taken out by passive checks (failed
/// requests, an open circuit) are kept out when they fail again and again, after Envoy's outlier
/// detection. Read at start-up.
/// </summary>
public sealed class OutlierDetectionOptions
{
    /// <summary>
    /// Longest ejection. Each ejection lasts the cluster's <c>Passive:ReactivationPeriod</c> times the number
    /// of ejections in the last <see cref="MaxEjectionTime"/>, up to this. Envoy's default.
    /// </summary>
    public TimeSpan MaxEjectionTime { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>
    /// Most of a cluster's destinations ejected by passive checks at once, in percent; at least one
    /// destination can always be ejected. Half: a fault of the balancer's own network that fails every
    /// request cannot empty the cluster, and one bad destination of two or three is still taken out.
    /// </summary>
    public int MaxEjectionPercent { get; set; } = 50;

    /// <summary>
    /// Successful probes in a row a destination needs, besides the ejection time, to return from a repeated
    /// ejection (a first ejection for a refused or cut connection ends with the first good probe: a
    /// restarted process). Only with active health checks on.
    /// </summary>
    public int SuccessfulProbesToReturn { get; set; } = 3;
}
