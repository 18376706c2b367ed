namespace Balancer.Tests.Integration;

/// <summary>
/// Integration tests run one class at a time: they measure timing-sensitive behaviour (health detection,
/// reload latency) on a 2-core machine, where parallel hosts would only make them slow and noisy.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IntegrationCollection
{
    public const string Name = "Integration";
}
