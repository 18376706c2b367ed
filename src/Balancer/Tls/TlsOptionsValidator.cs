using System.Text.RegularExpressions;
using Balancer.Configuration;

namespace Balancer.Tls;

/// <summary>
/// The <c>Balancer:Tls</c> section: shapes only, the files are read at start-up. <paramref name="httpsListener"/>:
/// some listener is <c>https://</c>, so a default certificate is required.
/// </summary>
internal sealed partial class TlsOptionsValidator(OptionsSource source, bool httpsListener) : OptionsValidator<TlsOptions>(source)
{
    protected override void Check(TlsOptions options, OptionErrors errors)
    {
        CheckPair(errors, "", options.CertificatePath, options.KeyPath, required: httpsListener, isDefault: true);
        foreach (var (host, files) in options.Sni)
        {
            var hostKey = $"{nameof(options.Sni)}:{host}";
            if (!HostPattern().IsMatch(host))
            {
                errors.Add(hostKey, $"'{host}' is not a host name or a wildcard such as *.example.com");
            }

            CheckPair(errors, hostKey + ":", files.CertificatePath, files.KeyPath, required: true, isDefault: false);
        }

        var maxAge = $"{nameof(options.Hsts)}:{nameof(options.Hsts.MaxAge)}";
        if (errors.Source.Raw(maxAge) is { } age && (errors.Source.Failed(maxAge) || options.Hsts.MaxAge < TimeSpan.Zero))
        {
            errors.Add(maxAge, $"'{age}' is not a time span of 0 or more such as 365.00:00:00");
        }

        if (errors.Source.Failed(nameof(options.RedirectPort)) || options.RedirectPort is < 1 or > 65535)
        {
            errors.Add(nameof(options.RedirectPort), $"'{errors.Source.Raw(nameof(options.RedirectPort))}' must be a port from 1 to 65535");
        }

        if (options.RedirectHttp && !httpsListener && errors.Source.Raw(nameof(options.RedirectPort)) is null)
        {
            errors.Add(nameof(options.RedirectHttp), "redirects need an https:// listener in Balancer:Listen, or RedirectPort for one elsewhere");
        }

        if (options.BackendCaBundlePath is { } bundle && string.IsNullOrWhiteSpace(bundle))
        {
            errors.Add(nameof(options.BackendCaBundlePath), "is empty; give a PEM file of CA certificates or leave the key out");
        }

    }

    private static void CheckPair(OptionErrors errors, string prefix, string? certificatePath, string? keyPath, bool required, bool isDefault)
    {
        var certificate = prefix + nameof(CertificateFiles.CertificatePath);
        var key = prefix + nameof(CertificateFiles.KeyPath);
        var hasCertificate = !string.IsNullOrWhiteSpace(certificatePath);
        var hasKey = !string.IsNullOrWhiteSpace(keyPath);
        if (hasCertificate && !hasKey)
        {
            errors.Add(key, $"is missing; {errors.Source.Key(certificate)} needs the file of its private key");
        }
        else if (hasKey && !hasCertificate)
        {
            errors.Add(certificate, $"is missing; {errors.Source.Key(key)} needs the file of its certificate");
        }
        else if (!hasCertificate && required)
        {
            errors.Add(certificate, isDefault
                ? $"is missing; an https:// listener needs a default certificate (and {errors.Source.Key(key)})"
                : $"is missing; give the certificate and its key ({errors.Source.Key(key)})");
        }
    }

    [GeneratedRegex(@"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex HostPattern();
}
