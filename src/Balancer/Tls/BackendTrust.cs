using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Tls;

/// <summary>
/// How the balancer checks the certificates of <c>https://</c> destinations: the system's roots, plus the
/// CA bundle of <c>Balancer:Tls:BackendCaBundlePath</c>. YARP's own <c>HttpClient:DangerousAcceptAnyServerCertificate</c>
/// switches checking off for a cluster; that is logged as a warning every time the cluster's client is built.
/// </summary>
internal sealed partial class BackendTrust(TlsStartup startup, ILogger<BackendTrust> logger)
{
    public void Apply(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        if (context.NewConfig.DangerousAcceptAnyServerCertificate == true)
        {
            LogUnverified(logger, context.ClusterId);
            return;
        }

        if (startup.BackendRoots is { Count: > 0 } roots)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => IsTrusted(roots, certificate, chain, errors);
        }
    }

    /// <summary>
    /// Valid by the system's roots, or a chain that ends at a root of the bundle. The host name must match
    /// either way: the bundle widens who may issue, never whom a certificate is for.
    /// </summary>
    internal static bool IsTrusted(X509Certificate2Collection roots, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null)
        {
            return false;
        }

        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(roots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null)
        {
            foreach (var element in chain.ChainElements)
            {
                custom.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return custom.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }

    [LoggerMessage(EventId = 1803, Level = LogLevel.Warning, Message = "Cluster {ClusterId}: HttpClient:DangerousAcceptAnyServerCertificate is true: the certificates of its https:// destinations are NOT checked; anyone on the path can read and change its traffic")]
    private static partial void LogUnverified(ILogger logger, string clusterId);
}
