namespace Balancer.Management;

internal static class ManagementServiceCollectionExtensions
{
    /// <summary>
    /// What the management listener serves from (the status API); the listener's own pipeline is
    /// <see cref="ManagementApp.Configure"/>. Reads the other features' state, none of which depends on it.
    /// </summary>
    public static IServiceCollection AddBalancerManagement(this IServiceCollection services) => services.AddSingleton<StatusApi>();
}
