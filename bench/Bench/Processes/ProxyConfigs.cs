using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace Bench.Processes;

/// <summary>A backend as the proxies see it.</summary>
internal sealed record Backend(string Name, int Port, int AdminPort = 0)
{
    public Uri Url => new($"http://127.0.0.1:{Port}/");

    /// <summary>The sample backend's <c>--admin-urls</c> listener (its /admin paths are served nowhere else).</summary>
    public Uri AdminUrl => new($"http://127.0.0.1:{AdminPort}/");
}

/// <summary>
/// The certificate every proxy of a TLS race serves: PEM certificate and key files, and the two in one file
/// (certificate first), as HAProxy's <c>crt</c> reads them.
/// </summary>
internal sealed record TlsFiles(string CertificatePath, string KeyPath, string CombinedPath)
{
    /// <summary>The pair deploy/tls/self-signed-cert.sh made in <paramref name="directory"/>, and the combined file written beside it (owner-only, a key is in it).</summary>
    public static TlsFiles Of(string directory)
    {
        var files = new TlsFiles(Path.Combine(directory, "tls.crt"), Path.Combine(directory, "tls.key"), Path.Combine(directory, "combined.pem"));
        File.WriteAllText(files.CombinedPath, string.Empty);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(files.CombinedPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.WriteAllText(files.CombinedPath, File.ReadAllText(files.CertificatePath) + File.ReadAllText(files.KeyPath));
        return files;
    }
}

/// <summary>
/// The configs the harness generates, one per proxy, from the same backends. Each is the proxy's usual
/// production shape for this job: keep-alive to the backends, no access logging.
/// </summary>
internal static class ProxyConfigs
{
    /// <summary>
    /// Idle upstream connections each NGINX worker keeps. As many as the race's largest client count, so
    /// at -c256 NGINX does not close and reopen backend connections: YARP's and HAProxy's pools have no
    /// such cap, and a smaller number would handicap NGINX rather than measure it.
    /// </summary>
    public const int NginxUpstreamKeepalive = 256;

    /// <summary>
    /// The balancer's config (as in docs/configuration.md) with its production features on: active health checks
    /// every 2 s. Also read by the bare YARP baseline, which uses only Listen and ReverseProxy.
    /// </summary>
    /// <param name="tls">Given: the proxy listener is <c>https://</c> (HTTP/1.1 and HTTP/2 by ALPN) with this certificate.</param>
    public static string Balancer(int port, int managementPort, string policy, IReadOnlyList<Backend> backends, TlsFiles? tls = null)
    {
        var destinations = new JsonObject();
        foreach (var backend in backends)
        {
            destinations[backend.Name] = new JsonObject { ["Address"] = backend.Url.ToString() };
        }

        var config = new JsonObject
        {
            ["Balancer"] = new JsonObject
            {
                ["Listen"] = $"{(tls is null ? "http" : "https")}://127.0.0.1:{port}",
                ["Management"] = new JsonObject { ["Listen"] = $"http://127.0.0.1:{managementPort}" },
                // Nothing routes around a bench proxy, so waiting for traffic to move away on stop is wasted time.
                ["Shutdown"] = new JsonObject { ["DrainDelay"] = "00:00:00" },
            },
            ["ReverseProxy"] = new JsonObject
            {
                ["Routes"] = new JsonObject
                {
                    ["all"] = new JsonObject { ["ClusterId"] = "backends", ["Match"] = new JsonObject { ["Path"] = "{**catch-all}" } },
                },
                ["Clusters"] = new JsonObject
                {
                    ["backends"] = new JsonObject
                    {
                        ["LoadBalancingPolicy"] = policy,
                        ["HealthCheck"] = new JsonObject
                        {
                            ["Active"] = new JsonObject
                            {
                                ["Enabled"] = true,
                                ["Interval"] = "00:00:02",
                                ["Timeout"] = "00:00:01",
                                ["Policy"] = "ConsecutiveFailures",
                                ["Path"] = "/health",
                            },
                        },
                        ["Destinations"] = destinations,
                    },
                },
            },
        };
        if (tls is not null)
        {
            config["Balancer"]!["Tls"] = new JsonObject { ["CertificatePath"] = tls.CertificatePath, ["KeyPath"] = tls.KeyPath };
        }

        return config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>
    /// NGINX as a reverse proxy: upstream keep-alive (HTTP/1.1 and an empty Connection header, which
    /// NGINX needs to reuse upstream connections), round robin, one worker per core the balancer gets, and
    /// the X-Forwarded-For/Proto/Host headers the balancer sends. NGINX open source has no active health checks.
    /// </summary>
    /// <param name="tls">
    /// Given: the listener is TLS 1.2 and 1.3 with HTTP/2 by ALPN. <paramref name="http2Directive"/>: NGINX 1.25.1 and
    /// later turn HTTP/2 on with <c>http2 on;</c>; older ones (Debian 12 ships 1.22) only know <c>listen ... http2</c>.
    /// </param>
    public static string Nginx(int port, IReadOnlyList<Backend> backends, int workers, string directory, TlsFiles? tls = null, bool http2Directive = true)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"worker_processes {workers};");
        text.AppendLine(CultureInfo.InvariantCulture, $"pid {directory}/nginx.pid;");
        text.AppendLine(CultureInfo.InvariantCulture, $"error_log {directory}/nginx-error.log warn;");
        text.AppendLine("events { worker_connections 4096; }");
        text.AppendLine("http {");
        text.AppendLine("  access_log off;");
        foreach (var temp in new[] { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" })
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  {temp}_temp_path {directory}/{temp}_temp;");
        }

        text.AppendLine("  keepalive_requests 100000;");
        text.AppendLine("  client_max_body_size 16m;");
        text.AppendLine("  upstream backends {");
        foreach (var backend in backends)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"    server 127.0.0.1:{backend.Port};");
        }

        text.AppendLine(CultureInfo.InvariantCulture, $"    keepalive {NginxUpstreamKeepalive};");
        text.AppendLine("    keepalive_requests 100000;");
        text.AppendLine("  }");
        text.AppendLine("  server {");
        if (tls is null)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"    listen 127.0.0.1:{port} backlog=4096;");
        }
        else
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"    listen 127.0.0.1:{port} ssl{(http2Directive ? string.Empty : " http2")} backlog=4096;");
            if (http2Directive)
            {
                text.AppendLine("    http2 on;");
            }

            text.AppendLine(CultureInfo.InvariantCulture, $"    ssl_certificate {tls.CertificatePath};");
            text.AppendLine(CultureInfo.InvariantCulture, $"    ssl_certificate_key {tls.KeyPath};");
            text.AppendLine("    ssl_protocols TLSv1.2 TLSv1.3;");
        }

        text.AppendLine("    location / {");
        text.AppendLine("      proxy_pass http://backends;");
        text.AppendLine("      proxy_http_version 1.1;");
        text.AppendLine("      proxy_set_header Connection \"\";");
        // The job the balancer does by default (YARP's forwarded-header transforms), so all three do the same work.
        text.AppendLine("      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;");
        text.AppendLine("      proxy_set_header X-Forwarded-Proto $scheme;");
        text.AppendLine("      proxy_set_header X-Forwarded-Host $http_host;");
        text.AppendLine("    }");
        text.AppendLine("  }");
        text.AppendLine("}");
        return text.ToString();
    }

    /// <summary>
    /// True when <c>nginx -v</c>'s answer names 1.25.1 or later, the first with <c>http2 on;</c>; an answer
    /// without a version is taken as a current NGINX.
    /// </summary>
    public static bool NginxHasHttp2Directive(string versionText)
    {
        var match = System.Text.RegularExpressions.Regex.Match(versionText, @"nginx/(\d+\.\d+\.\d+)");
        return !match.Success || Version.Parse(match.Groups[1].Value) >= new Version(1, 25, 1);
    }

    /// <summary>
    /// HAProxy in HTTP mode with keep-alive on both sides, round robin, no logging, the balancer's forwarded
    /// headers and active health checks as the balancer runs them (GET /health every 2 s).
    /// </summary>
    /// <param name="tls">Given: the frontend is TLS 1.2 and up with HTTP/2 and HTTP/1.1 by ALPN.</param>
    public static string Haproxy(int port, IReadOnlyList<Backend> backends, int threads, TlsFiles? tls = null)
    {
        var text = new StringBuilder();
        text.AppendLine("global");
        text.AppendLine(CultureInfo.InvariantCulture, $"  nbthread {threads}");
        // No global maxconn: HAProxy derives it from the open-file limit, which differs between machines
        // (a fixed value above the limit makes it refuse to start); -c256 is far below either.
        text.AppendLine("defaults");
        text.AppendLine("  mode http");
        text.AppendLine("  option http-keep-alive");
        text.AppendLine("  timeout connect 5s");
        text.AppendLine("  timeout client 60s");
        text.AppendLine("  timeout server 60s");
        text.AppendLine("frontend proxy");
        text.AppendLine(CultureInfo.InvariantCulture, $"  bind 127.0.0.1:{port}{(tls is null ? string.Empty : $" ssl crt {tls.CombinedPath} alpn h2,http/1.1 ssl-min-ver TLSv1.2")}");
        text.AppendLine("  default_backend backends");
        text.AppendLine("backend backends");
        text.AppendLine("  balance roundrobin");
        // The balancer's job: forwarded headers, and a health probe of every backend every 2 s.
        text.AppendLine("  option forwardfor");
        text.AppendLine(CultureInfo.InvariantCulture, $"  http-request set-header X-Forwarded-Proto {(tls is null ? "http" : "https")}");
        text.AppendLine("  http-request set-header X-Forwarded-Host %[req.hdr(host)]");
        text.AppendLine("  option httpchk GET /health");
        foreach (var backend in backends)
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"  server {backend.Name} 127.0.0.1:{backend.Port} check inter 2s");
        }

        return text.ToString();
    }
}
