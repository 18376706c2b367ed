namespace Balancer.Tests.HighAvailability;

/// <summary>A test that needs network namespaces: skipped, saying why, only where the kernel or permissions forbid them.</summary>
internal sealed class NamespaceFactAttribute : FactAttribute
{
    public NamespaceFactAttribute()
    {
        if (NetworkLab.Unavailable() is { } reason)
        {
            Skip = "Needs Linux network namespaces: " + reason;
        }
    }
}
