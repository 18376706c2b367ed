namespace Balancer.Tls;

internal static class TlsServiceCollectionExtensions
{
    /// <summary>The certificate store (SNI, rotation), its metrics and the trust for https:// destinations.</summary>
    public static IServiceCollection AddBalancerTls(this IServiceCollection services, TlsStartup startup)
    {
        services.AddSingleton(startup);
        services.AddSingleton<CertificateStore>();
        services.AddHostedService(static sp => sp.GetRequiredService<CertificateStore>());
        services.AddSingleton<CertificateMetrics>();
        services.AddSingleton<BackendTrust>();
        return services;
    }
}
