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
    public async Task Rendered_Multicast_KeepalivedAcceptsIt_TrackScriptOnReadyz_TrackFile_NoPreempt() => await RenderedIsAcceptedAsync(null);

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
        Assert.Contains($"script \"{Repo.PathOf("deploy/keepalived")}/check_balancer.sh --alive http://127.0.0.1:9091/readyz\"\n    interval 1\n    timeout 3\n    fall 1\n", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("track_script {\n        balancer_ready\n        balancer_alive\n    }", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("192.168.56.103/24 dev eth0", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("nopreempt", result.Stdout, StringComparison.Ordinal);
        // The balancer's Balancer:Shutdown:TrackFile at the path the systemd drop-in gives it, watched with weight 0.
        Assert.Contains("track_file balancer_leaving {\n    file \"/run/balancer/leaving\"\n    weight 0\n}", result.Stdout, StringComparison.Ordinal);
        Assert.Contains("track_file {\n        balancer_leaving\n    }", result.Stdout, StringComparison.Ordinal);
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
    public async Task AliveCheck_FailsOnlyWhenNothingListens_NotWhenTheBalancerAnswersBadly()
    {
        var script = Repo.PathOf("deploy/keepalived/check_balancer.sh");
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var url = $"http://127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}/readyz";
        // Accepts and closes at once: curl gets no answer at all (exit 52), as from a balancer in trouble but alive.
        var accepting = Task.Run(async () =>
        {
            using var connection = await listener.AcceptTcpClientAsync();
        });

        var answered = Repo.Run(script, ["--alive", url]);
        await accepting;
        listener.Stop();
        var gone = Repo.Run(script, ["--alive", url]);

        Assert.True(answered.ExitCode == 0, answered.ToString());
        Assert.True(gone.ExitCode == 1, gone.ToString());
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
            ["LB_PRIORITY"] = "250",
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
