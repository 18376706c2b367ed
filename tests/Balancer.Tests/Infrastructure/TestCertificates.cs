using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// A throwaway CA and the server certificates it signs, written as PEM files into a temporary folder that
/// is deleted afterwards. Every certificate is valid for 127.0.0.1 besides its DNS names, so clients can
/// check it while connecting to loopback.
/// </summary>
internal sealed class TestCertificates : IDisposable
{
    private readonly ECDsa _caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    private long _serial = 0x1000;

    public TestCertificates(string commonName = "Balancer Test CA")
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("balancer-tls-").FullName;
        var request = new CertificateRequest($"CN={commonName}", _caKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        Ca = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-365), DateTimeOffset.UtcNow.AddYears(2));
        CaPath = Path.Combine(Directory, "ca.pem");
        File.WriteAllText(CaPath, Ca.ExportCertificatePem());
    }

    public string Directory { get; }

    public X509Certificate2 Ca { get; }

    /// <summary>The CA certificate as a PEM file, for <c>curl --cacert</c> or a CA bundle.</summary>
    public string CaPath { get; }

    /// <summary>A server certificate and its key; the serial is returned as hex, the way openssl and .NET print it.</summary>
    /// <remarks><paramref name="crlUri"/> adds a CRL distribution point, which TLS scanners expect of a public certificate.</remarks>
    public Issued Issue(string name, string[]? dnsNames = null, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, string? crlUri = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (certificatePem, serial) = Sign(key, dnsNames ?? ["localhost"], notBefore, notAfter, crlUri);
        var issued = new Issued(Path.Combine(Directory, name + ".crt"), Path.Combine(Directory, name + ".key"), serial, certificatePem, key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(issued.CertificatePath, issued.CertificatePem);
        File.WriteAllText(issued.KeyPath, issued.KeyPem);
        return issued;
    }

    /// <summary>A new certificate and key for the same file names, returned without touching the files.</summary>
    public Issued Renew(Issued current, string[]? dnsNames = null, DateTimeOffset? notBefore = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var (certificatePem, serial) = Sign(key, dnsNames ?? ["localhost"], notBefore, null, null);
        return current with { Serial = serial, CertificatePem = certificatePem, KeyPem = key.ExportPkcs8PrivateKeyPem() };
    }

    public void Dispose()
    {
        _caKey.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    private (string Pem, string Serial) Sign(ECDsa key, string[] dnsNames, DateTimeOffset? notBefore, DateTimeOffset? notAfter, string? crlUri)
    {
        var request = new CertificateRequest($"CN={dnsNames[0]}", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        foreach (var dns in dnsNames)
        {
            names.AddDnsName(dns);
        }

        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        if (crlUri is not null)
        {
            request.CertificateExtensions.Add(CertificateRevocationListBuilder.BuildCrlDistributionPointExtension([crlUri]));
        }

        var serial = BitConverter.GetBytes(Interlocked.Increment(ref _serial));
        Array.Reverse(serial);
        using var certificate = request.Create(Ca, notBefore ?? DateTimeOffset.UtcNow.AddHours(-1), notAfter ?? DateTimeOffset.UtcNow.AddDays(90), serial);
        return (certificate.ExportCertificatePem(), certificate.SerialNumber);
    }

    /// <summary>A certificate's files and contents.</summary>
    public sealed record Issued(string CertificatePath, string KeyPath, string Serial, string CertificatePem, string KeyPem)
    {
        /// <summary>Writes both files in place (the certificate first), as a renewal that rewrites them does.</summary>
        public void Write()
        {
            File.WriteAllText(CertificatePath, CertificatePem);
            File.WriteAllText(KeyPath, KeyPem);
        }
    }
}
