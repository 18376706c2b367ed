using Balancer.Configuration;
using Bench.Processes;

namespace Balancer.Tests.Benchmarks;

/// <summary>The generated configs are checked by the real tools that will run them.</summary>
public sealed class ProxyConfigsTests : IDisposable
{
    private static readonly Backend[] Backends = [new("A", 15001), new("B", 15002), new("C", 15003)];
    private readonly string _directory = Directory.CreateTempSubdirectory("bench-config-").FullName;

    [Fact]
    public void Balancer_GeneratedConfig_PassesTheBalancersOwnValidation()
    {
        var path = Path.Combine(_directory, "balancer.json");
        File.WriteAllText(path, ProxyConfigs.Balancer(18080, 19091, "LeastConnections", Backends));

        var result = ConfigFile.Read(path);

        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        Assert.Contains("\"LeastConnections\"", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.Contains("\"Address\": \"http://127.0.0.1:15003/\"", File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Fact]
    public void Nginx_GeneratedConfig_PassesNginxTest_WithUpstreamKeepalive_AndForwardedHeaders()
    {
        var config = ProxyConfigs.Nginx(18081, Backends, workers: 2, _directory);

        var (exit, output) = NginxTest(config);

        Assert.True(exit == 0, output);
        Assert.Contains("keepalive 256;", config, StringComparison.Ordinal);
        Assert.Contains("proxy_http_version 1.1;", config, StringComparison.Ordinal);
        Assert.Contains("proxy_set_header Connection \"\";", config, StringComparison.Ordinal);
        Assert.Contains("access_log off;", config, StringComparison.Ordinal);
        Assert.Contains("worker_processes 2;", config, StringComparison.Ordinal);
        Assert.Contains("server 127.0.0.1:15002;", config, StringComparison.Ordinal);
        Assert.Contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", config, StringComparison.Ordinal);
        Assert.Contains("proxy_set_header X-Forwarded-Proto $scheme;", config, StringComparison.Ordinal);
    }

    [Fact]
    public void Haproxy_GeneratedConfig_PassesHaproxyCheck_HttpModeKeepAlive_HealthChecksAndForwardedHeaders()
    {
        var config = ProxyConfigs.Haproxy(18082, Backends, threads: 2);
        var path = Path.Combine(_directory, "haproxy.cfg");
        File.WriteAllText(path, config);

        var (exit, output) = Run("haproxy", "-c", "-f", path);

        Assert.True(exit == 0, output);
        Assert.Contains("mode http", config, StringComparison.Ordinal);
        Assert.Contains("option http-keep-alive", config, StringComparison.Ordinal);
        Assert.Contains("nbthread 2", config, StringComparison.Ordinal);
        Assert.Contains("server C 127.0.0.1:15003 check inter 2s", config, StringComparison.Ordinal);
        Assert.Contains("option httpchk GET /health", config, StringComparison.Ordinal);
        Assert.Contains("option forwardfor", config, StringComparison.Ordinal);
        Assert.DoesNotContain("log ", config, StringComparison.Ordinal);
    }

    [Fact]
    public void Balancer_TlsConfig_PassesValidation_WithAnHttpsListenerAndTheCertificate()
    {
        var tls = Certificate();
        var path = Path.Combine(_directory, "balancer.json");
        File.WriteAllText(path, ProxyConfigs.Balancer(18443, 19091, "RoundRobin", Backends, tls));

        var result = ConfigFile.Read(path);

        Assert.True(result.IsValid, string.Join("; ", result.Errors));
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!["Balancer"]!;
        Assert.Equal("https://127.0.0.1:18443", (string?)config["Listen"]);
        Assert.Equal(tls.CertificatePath, (string?)config["Tls"]!["CertificatePath"]);
        Assert.Equal(tls.KeyPath, (string?)config["Tls"]!["KeyPath"]);
    }

    [Fact]
    public void Nginx_TlsConfig_PassesNginxTest_Tls12And13Only_Http2AsTheInstalledVersionSpellsIt()
    {
        var tls = Certificate();
        var (_, version) = Run("nginx", "-v");
        var http2On = ProxyConfigs.NginxHasHttp2Directive(version);
        var config = ProxyConfigs.Nginx(18443, Backends, workers: 2, _directory, tls, http2On);

        var (exit, output) = NginxTest(config);

        Assert.True(exit == 0, output);
        Assert.Contains(http2On ? "listen 127.0.0.1:18443 ssl backlog=4096;" : "listen 127.0.0.1:18443 ssl http2 backlog=4096;", config, StringComparison.Ordinal);
        Assert.Equal(http2On, config.Contains("http2 on;", StringComparison.Ordinal));
        Assert.Contains("ssl_protocols TLSv1.2 TLSv1.3;", config, StringComparison.Ordinal);
        Assert.Contains($"ssl_certificate {tls.CertificatePath};", config, StringComparison.Ordinal);
        Assert.Contains($"ssl_certificate_key {tls.KeyPath};", config, StringComparison.Ordinal);
        Assert.Contains("keepalive 256;", config, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nginx version: nginx/1.22.1", false)]
    [InlineData("nginx version: nginx/1.25.0", false)]
    [InlineData("nginx version: nginx/1.25.1", true)]
    [InlineData("nginx version: nginx/1.28.0 (Ubuntu)", true)]
    [InlineData("nginx version: openresty", true)]
    public void Nginx_Http2Directive_From1251(string version, bool expected) =>
        Assert.Equal(expected, ProxyConfigs.NginxHasHttp2Directive(version));

    [Fact]
    public void Haproxy_TlsConfig_PassesHaproxyCheck_WithAlpnH2AndHttp11_Tls12AndUp()
    {
        var tls = Certificate();
        var config = ProxyConfigs.Haproxy(18443, Backends, threads: 2, tls);
        var path = Path.Combine(_directory, "haproxy.cfg");
        File.WriteAllText(path, config);

        var (exit, output) = Run("haproxy", "-c", "-f", path);

        Assert.True(exit == 0, output);
        Assert.Contains($"bind 127.0.0.1:18443 ssl crt {tls.CombinedPath} alpn h2,http/1.1 ssl-min-ver TLSv1.2", config, StringComparison.Ordinal);
        Assert.Contains("http-request set-header X-Forwarded-Proto https", config, StringComparison.Ordinal);
        Assert.Contains("option http-keep-alive", config, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary><c>nginx -t</c> on the config, with the temp folders it names made first.</summary>
    private (int Exit, string Output) NginxTest(string config)
    {
        foreach (var temp in new[] { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" })
        {
            Directory.CreateDirectory(Path.Combine(_directory, temp + "_temp"));
        }

        var path = Path.Combine(_directory, "nginx.conf");
        File.WriteAllText(path, config);
        return Run("nginx", "-t", "-p", _directory, "-e", Path.Combine(_directory, "error.log"), "-c", path);
    }

    /// <summary>A pair as the harness makes it (the deployments' script), and the combined file HAProxy reads.</summary>
    private TlsFiles Certificate()
    {
        var directory = Path.Combine(_directory, "tls");
        var made = Balancer.Tests.Deployment.SelfSignedCertTests.Run(directory, "localhost", "127.0.0.1");
        Assert.True(made.ExitCode == 0, made.ToString());
        return TlsFiles.Of(directory);
    }

    private static (int Exit, string Output) Run(string file, params string[] args)
    {
        var (exit, output, error) = Command.Run(File.Exists("/usr/sbin/" + file) ? "/usr/sbin/" + file : file, args);
        return (exit, output + error);
    }
}
