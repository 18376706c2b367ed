using System.Globalization;
using System.Text.RegularExpressions;
using Balancer.Configuration;
using Microsoft.Extensions.Configuration;

namespace Balancer.Tls;

/// <summary>The checks of <c>Balancer:Listen</c> and <c>Balancer:Tls</c>: shapes only, the files are read at start-up.</summary>
internal static partial class TlsValidation
{
    public static void Check(IConfigurationSection balancer, List<string> errors)
    {
        var listen = balancer.GetSection("Listen");
        var https = false;
        if (listen.Value is not null || listen.GetChildren().Any())
        {
            foreach (var (key, text) in ListenAddress.Read(listen))
            {
                if (!ListenAddress.TryParse(text, out var address, out var reason))
                {
                    errors.Add($"{key}: {reason}");
                }
                else
                {
                    https |= address!.IsHttps;
                }
            }
        }

        var management = balancer.GetSection("Management:Listen");
        if (ListenAddress.TryParse(management.Value, out var managementAddress, out _) && managementAddress!.Scheme != Uri.UriSchemeHttp)
        {
            errors.Add($"{management.Path}: '{management.Value}' must be an http:// address; the management listener speaks HTTP/1.1 without TLS");
        }

        var tls = balancer.GetSection(TlsOptions.SectionName);
        CheckPair(tls, required: https, errors);
        foreach (var host in tls.GetSection("Sni").GetChildren())
        {
            if (!HostPattern().IsMatch(host.Key))
            {
                errors.Add($"{host.Path}: '{host.Key}' is not a host name or a wildcard such as *.example.com");
            }

            CheckPair(host, required: true, errors);
        }

        CheckBool(tls.GetSection("RedirectHttp"), errors);
        CheckBool(tls.GetSection("StrictCiphers"), errors);
        CheckBool(tls.GetSection("Hsts:Enabled"), errors);
        CheckBool(tls.GetSection("Hsts:IncludeSubDomains"), errors);
        CheckBool(tls.GetSection("Hsts:Preload"), errors);
        var maxAge = tls.GetSection("Hsts:MaxAge");
        if (maxAge.Value is not null && (!TimeSpan.TryParse(maxAge.Value, CultureInfo.InvariantCulture, out var age) || age < TimeSpan.Zero))
        {
            errors.Add($"{maxAge.Path}: '{maxAge.Value}' is not a time span of 0 or more such as 365.00:00:00");
        }

        var port = tls.GetSection("RedirectPort");
        if (port.Value is not null && (!int.TryParse(port.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number is < 1 or > 65535))
        {
            errors.Add($"{port.Path}: '{port.Value}' must be a port from 1 to 65535");
        }

        var redirect = tls.GetSection("RedirectHttp");
        if (string.Equals(redirect.Value, "true", StringComparison.OrdinalIgnoreCase) && !https && port.Value is null)
        {
            errors.Add($"{redirect.Path}: redirects need an https:// listener in Balancer:Listen, or RedirectPort for one elsewhere");
        }

        var bundle = tls.GetSection("BackendCaBundlePath");
        if (bundle.Value is { } path && string.IsNullOrWhiteSpace(path))
        {
            errors.Add($"{bundle.Path}: is empty; give a PEM file of CA certificates or leave the key out");
        }
    }

    private static void CheckPair(IConfigurationSection section, bool required, List<string> errors)
    {
        var certificate = section.GetSection("CertificatePath");
        var key = section.GetSection("KeyPath");
        var hasCertificate = !string.IsNullOrWhiteSpace(certificate.Value);
        var hasKey = !string.IsNullOrWhiteSpace(key.Value);
        if (hasCertificate && !hasKey)
        {
            errors.Add($"{key.Path}: is missing; {certificate.Path} needs the file of its private key");
        }
        else if (hasKey && !hasCertificate)
        {
            errors.Add($"{certificate.Path}: is missing; {key.Path} needs the file of its certificate");
        }
        else if (!hasCertificate && required)
        {
            errors.Add(section.Key == TlsOptions.SectionName
                ? $"{certificate.Path}: is missing; an https:// listener needs a default certificate (and {key.Path})"
                : $"{certificate.Path}: is missing; give the certificate and its key ({key.Path})");
        }
    }

    private static void CheckBool(IConfigurationSection section, List<string> errors)
    {
        if (section.Value is not null && !bool.TryParse(section.Value, out _))
        {
            errors.Add($"{section.Path}: '{section.Value}' is not true or false");
        }
    }

    [GeneratedRegex(@"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")]
    private static partial Regex HostPattern();
}
