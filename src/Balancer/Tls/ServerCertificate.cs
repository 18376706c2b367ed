using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Balancer.Tls;

/// <summary>Where a certificate comes from: its name (<c>default</c> or the SNI host) and its two files with their keys.</summary>
internal sealed record CertificateSource(string Name, string CertificateKey, string CertificatePath, string KeyKey, string KeyPath)
{
    public const string DefaultName = "default";
}

/// <summary>A loaded, checked certificate with what a TLS handshake needs prepared once.</summary>
internal sealed class ServerCertificate
{
    private static readonly List<SslApplicationProtocol> Alpn = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];

    private ServerCertificate(CertificateSource source, X509Certificate2 leaf, X509Certificate2Collection chain)
    {
        Source = source;
        Leaf = leaf;
        // Built once, so a handshake does not build the chain again; offline: no fetching of intermediates.
        // Without a cipher suite policy the runtime keeps one OpenSSL context per certificate context and
        // reuses it for every handshake, which also lets clients resume their sessions by ticket; with a
        // policy it builds and configures a new OpenSSL context for each connection, and none resumes.
        var context = SslStreamCertificateContext.Create(leaf, chain, offline: true);
        Options = HandshakeOptions(context, cipherSuites: null);
        StrictOptions = HandshakeOptions(context, StrictCiphers.Policy);
        DnsNames = [.. leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateDnsNames())];
    }

    public CertificateSource Source { get; }

    public X509Certificate2 Leaf { get; }

    /// <summary>Handshake options served with this certificate; shared by every connection, never changed.</summary>
    public SslServerAuthenticationOptions Options { get; }

    /// <summary>As <see cref="Options"/>, TLS 1.2 limited to <see cref="StrictCiphers"/> (<c>Balancer:Tls:StrictCiphers</c>).</summary>
    public SslServerAuthenticationOptions StrictOptions { get; }

    public IReadOnlyList<string> DnsNames { get; }

    public string Serial => Leaf.SerialNumber;

    public DateTimeOffset NotAfter => new(Leaf.NotAfter.ToUniversalTime());

    /// <summary>The name the certificate is for: its first DNS name, else its subject's common name.</summary>
    public string Host => DnsNames.Count > 0 ? DnsNames[0] : Leaf.GetNameInfo(X509NameType.SimpleName, forIssuer: false);

    /// <summary>
    /// Reads and checks the pair. The error names the key and the file; <c>Mismatch</c> tells a key that is
    /// readable but belongs to another certificate, the state a pair is in while it is being replaced.
    /// </summary>
    public static (ServerCertificate? Certificate, string? Error, bool Mismatch) Load(CertificateSource source, DateTimeOffset now)
    {
        string certificateText;
        string keyText;
        try
        {
            certificateText = File.ReadAllText(source.CertificatePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail($"{source.CertificateKey}: cannot read {source.CertificatePath}: {e.Message}");
        }

        try
        {
            keyText = File.ReadAllText(source.KeyPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail($"{source.KeyKey}: cannot read {source.KeyPath}: {e.Message}");
        }

        var chain = new X509Certificate2Collection();
        try
        {
            chain.ImportFromPem(certificateText);
        }
        catch (CryptographicException e)
        {
            return Fail($"{source.CertificateKey}: {source.CertificatePath} is not a readable PEM certificate: {e.Message}");
        }

        if (chain.Count == 0)
        {
            return Fail($"{source.CertificateKey}: {source.CertificatePath} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }

        var certificate = chain[0];
        chain.RemoveAt(0);
        if (keyText.Contains("ENCRYPTED PRIVATE KEY", StringComparison.Ordinal))
        {
            return Fail($"{source.KeyKey}: {source.KeyPath} holds an encrypted key; give the key without a passphrase (openssl pkey -in KEY -out KEY.plain)");
        }

        using var key = ReadKey(keyText);
        if (key is null)
        {
            return Fail($"{source.KeyKey}: {source.KeyPath} holds no readable PEM private key (RSA or EC)");
        }

        X509Certificate2 leaf;
        try
        {
            leaf = key switch
            {
                RSA rsa => certificate.CopyWithPrivateKey(rsa),
                ECDsa ecdsa => certificate.CopyWithPrivateKey(ecdsa),
                _ => throw new CryptographicException("unsupported key type"),
            };
        }
        catch (Exception e) when (e is ArgumentException or CryptographicException or InvalidOperationException)
        {
            return (null, $"{source.KeyKey}: the key in {source.KeyPath} does not match the certificate in {source.CertificatePath}", true);
        }

        if (now < leaf.NotBefore.ToUniversalTime())
        {
            return Fail($"{source.CertificateKey}: the certificate in {source.CertificatePath} is not valid before {leaf.NotBefore.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z");
        }

        if (now > leaf.NotAfter.ToUniversalTime())
        {
            return Fail($"{source.CertificateKey}: the certificate in {source.CertificatePath} expired at {leaf.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z");
        }

        return (new ServerCertificate(source, leaf, chain), null, false);

        static (ServerCertificate?, string?, bool) Fail(string error) => (null, error, false);
    }

    private static SslServerAuthenticationOptions HandshakeOptions(SslStreamCertificateContext context, CipherSuitesPolicy? cipherSuites) => new()
    {
        ServerCertificateContext = context,
        EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
        ApplicationProtocols = Alpn,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        AllowRenegotiation = false,
        CipherSuitesPolicy = cipherSuites,
    };

    private static AsymmetricAlgorithm? ReadKey(string pem)
    {
        // The label does not always tell the algorithm (PKCS#8 "PRIVATE KEY" holds either), so try both.
        AsymmetricAlgorithm[] candidates = [RSA.Create(), ECDsa.Create()];
        AsymmetricAlgorithm? found = null;
        foreach (var candidate in candidates)
        {
            if (found is null)
            {
                try
                {
                    switch (candidate)
                    {
                        case RSA rsa:
                            rsa.ImportFromPem(pem);
                            break;
                        case ECDsa ecdsa:
                            ecdsa.ImportFromPem(pem);
                            break;
                    }

                    found = candidate;
                    continue;
                }
                catch (Exception e) when (e is ArgumentException or CryptographicException)
                {
                }
            }

            candidate.Dispose();
        }

        return found;
    }
}

/// <summary>
/// TLS 1.3's suites and TLS 1.2's forward-secret AEAD suites only: what current server hardening guides
/// keep (no CBC, no RSA key exchange). Without it, TLS 1.2 also offers the runtime's ECDHE suites with
/// AES-CBC and SHA-256/384 after the AES-GCM ones (the server's order wins, so only clients without GCM
/// get CBC) and no ChaCha20-Poly1305. Linux and macOS only; elsewhere the system's defaults apply.
/// </summary>
internal static class StrictCiphers
{
    public static CipherSuitesPolicy? Policy { get; } = OperatingSystem.IsWindows() ? null : Create();

    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static CipherSuitesPolicy Create() => new(
    [
        TlsCipherSuite.TLS_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        TlsCipherSuite.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]);
}
