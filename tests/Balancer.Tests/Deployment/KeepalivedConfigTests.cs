using Balancer.Tests.HighAvailability;

namespace Balancer.Tests.Deployment;

/// <summary>
/// deploy/keepalived: render.sh's output checked by keepalived itself (<c>keepalived -t</c>), its refusals, and
/// the scripts by shellcheck. The pair failing over for real is in HighAvailability/KeepalivedFailoverTests.
/// </summary>
public sealed class KeepalivedConfigTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("keepalived-config-").FullName;

    [NamespaceFact]
    public async Task Rendered_Multicast_KeepalivedAcceptsIt_TrackScriptOnReadyz_NoPreempt() => await RenderedIsAcceptedAsync(null);

    [NamespaceFact]
    public async Task Rendered_UnicastPeers_KeepalivedAcceptsIt() => await RenderedIsAcceptedAsync("192.168.56.12");

    private async Task RenderedIsAcceptedAsync(string? peers)
    {
        // keepalived checks the interface exists: a namespace of its own gives it one, with the VM's address.
        await using var lab = NetworkLab.Create();
        var host = lab.AddHost("cfg", "192.168.56.11/24");
        var result = Render(new() { ["LB_INTERFACE"] = "eth0", ["LB_PEERS"] = peers, ["LB_SOURCE"] = peers is null ? null : "192.168.56.11", ["LB_SCRIPT_USER"] = "root", ["LB_SCRIPTS"] = Repo.PathOf("deploy/keepalived") });
        Assert.True(result.ExitCode == 0, result.ToString());
        var conf = Path.Combine(_directory, "keepalived.conf");
        File.WriteAllText(conf, result.Stdout);

        // Throws with keepalived's complaints when it exits non-zero.
        lab.Run(host, "keepalived", "--config-test", "--log-console", "--use-file", conf);

        Assert.Contains($"script \"{Repo.PathOf("deploy/keepalived")}/check_balancer.sh http://127.0.0.1:9091/readyz\"", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("192.168.56.103/24 dev eth0", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("nopreempt", result.Stdout, StringComparison.Ordinal);
        Assert.Equal(peers is not null, result.Stdout.Contains("unicast_peer {\n        192.168.56.12\n    }", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("LB_VIP", "", "LB_VIP is not set")]
    [InlineData("LB_PRIORITY", "255", "LB_PRIORITY must be 1-254, not '255'")]
    [InlineData("LB_PEERS", "192.168.56.12", "LB_PEERS needs LB_SOURCE")]
    public void Render_BadSetting_Exit2NamingIt_NothingWritten(string key, string value, string message)
    {
        var result = Render(new() { [key] = value });

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.Equal(string.Empty, result.Stdout);
    }

    [Fact]
    public void Scripts_PassShellcheck()
    {
        var scripts = Directory.GetFiles(Repo.PathOf("deploy/keepalived"), "*.sh").Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["check_balancer.sh", "notify.sh", "render.sh"], scripts.Select(Path.GetFileName));

        var result = Repo.Run("shellcheck", ["--severity=style", .. scripts]);

        Assert.True(result.ExitCode == 0, result.ToString());
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static ToolResult Render(Dictionary<string, string?> overrides)
    {
        var env = new Dictionary<string, string?>
        {
            ["LB_NAME"] = "lb1",
            ["LB_INTERFACE"] = "eth1",
            ["LB_VIP"] = "192.168.56.103/24",
            ["LB_PRIORITY"] = "150",
            ["LB_PEERS"] = null,
            ["LB_SOURCE"] = null,
        };
        foreach (var (key, value) in overrides)
        {
            env[key] = value;
        }

        return Repo.Run(Repo.PathOf("deploy/keepalived/render.sh"), [], env: env);
    }
}
