using Microsoft.AspNetCore.DataProtection;

namespace Balancer.Hosting;

/// <summary>
/// DataProtection with keys held in memory for the life of the process. The balancer sets no cookies of its
/// own; YARP registers DataProtection only for the session-affinity cookie, which a cluster may turn on. The
/// default key ring would be created at start-up under the user's home directory (or, where there is none,
/// in memory), each with a Warning an operator can do nothing about.
/// </summary>
internal static class EphemeralDataProtection
{
    /// <summary>Call after <c>AddReverseProxy</c>, which registers the default DataProtection services.</summary>
    public static IServiceCollection AddEphemeralDataProtection(this IServiceCollection services)
    {
        services.AddDataProtection().UseEphemeralDataProtectionProvider();
        // Its only job is to load the default key ring at start-up, which nothing reads any more.
        foreach (var warmUp in services.Where(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.Assembly == typeof(EphemeralDataProtectionProvider).Assembly).ToList())
        {
            services.Remove(warmUp);
        }

        return services;
    }
}
