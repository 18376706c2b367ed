namespace Balancer.Tls;

/// <summary>The <c>Balancer:Tls</c> section: certificates of the <c>https://</c> listeners, redirect and HSTS.</summary>
public sealed class TlsOptions
{
    public const string SectionName = "Tls";

    /// <summary>PEM file with the default certificate, then its chain. Relative paths are taken from the config file's folder.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM file with the default certificate's private key (unencrypted RSA or EC).</summary>
    public string? KeyPath { get; set; }

    /// <summary>
    /// Certificates chosen by the name the client asks for (SNI), keyed by host name or wildcard
    /// (<c>*.example.com</c>, one label deep). A name that matches none gets the default certificate.
    /// </summary>
    public Dictionary<string, CertificateFiles> Sni { get; set; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Answer HTTP/1.x requests on cleartext listeners with <c>308</c> to the same path and query over HTTPS.</summary>
    public bool RedirectHttp { get; set; }

    /// <summary>The port in redirect targets; default the first <c>https://</c> listener's (left out when 443).</summary>
    public int? RedirectPort { get; set; }

    /// <summary>The <c>Strict-Transport-Security</c> header on HTTPS responses.</summary>
    public HstsOptions Hsts { get; set; } = new();

    /// <summary>
    /// Limit TLS 1.2 to ECDHE with AES-GCM or ChaCha20-Poly1305 (no CBC suites). Off by default: with a
    /// cipher suite list of its own, each full handshake costs a new OpenSSL context and sessions cannot
    /// be resumed.
    /// </summary>
    public bool StrictCiphers { get; set; }

    /// <summary>CA certificates (PEM bundle) trusted for <c>https://</c> destinations besides the system's. Read at start-up.</summary>
    public string? BackendCaBundlePath { get; set; }
}

/// <summary>A certificate and its key, both PEM files.</summary>
public sealed class CertificateFiles
{
    public string? CertificatePath { get; set; }

    public string? KeyPath { get; set; }
}

/// <summary>HTTP Strict Transport Security; off by default because browsers remember it for <see cref="MaxAge"/>.</summary>
public sealed class HstsOptions
{
    public bool Enabled { get; set; }

    public TimeSpan MaxAge { get; set; } = TimeSpan.FromDays(365);

    public bool IncludeSubDomains { get; set; }

    public bool Preload { get; set; }

    /// <summary>The header value, e.g. <c>max-age=31536000; includeSubDomains</c>.</summary>
    public string HeaderValue() =>
        $"max-age={(long)MaxAge.TotalSeconds}{(IncludeSubDomains ? "; includeSubDomains" : "")}{(Preload ? "; preload" : "")}";
}
