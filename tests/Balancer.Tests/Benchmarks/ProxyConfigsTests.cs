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
        foreach (var temp in new[] { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" })
        {
            Directory.CreateDirectory(Path.Combine(_directory, temp + "_temp"));
        }

        var path = Path.Combine(_directory, "nginx.conf");
        File.WriteAllText(path, config);

        var (exit, output) = Run("nginx", "-t", "-p", _directory, "-e", Path.Combine(_directory, "error.log"), "-c", path);

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

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static (int Exit, string Output) Run(string file, params string[] args)
    {
        var (exit, output, error) = Command.Run(File.Exists("/usr/sbin/" + file) ? "/usr/sbin/" + file : file, args);
        return (exit, output + error);
    }
}
