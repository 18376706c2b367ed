using System.Text.Json.Nodes;
using Balancer.Tests.HighAvailability;

namespace Balancer.Tests.Deployment;

/// <summary>
/// The Vagrantfile and its provisioning scripts, checked with real tools (ruby, shellcheck, bash). No
/// VirtualBox here: the Vagrantfile is loaded against a recording stand-in for Vagrant's DSL
/// (vagrantfile_dsl.rb) and what it defines is compared with the papers' topology.
/// </summary>
public sealed class VagrantTests
{
    // The paper's Wireshark table: load balancer .103, Flask A .109, B .113, C .110. The balancer address
    // floats between lb1 and lb2 (keepalived); their own addresses and the monitor are ours.
    private const string Floating = "192.168.56.103";

    private static readonly Dictionary<string, string> Topology = new()
    {
        ["lb1"] = "192.168.56.111",
        ["lb2"] = "192.168.56.112",
        ["backend-a"] = "192.168.56.109",
        ["backend-b"] = "192.168.56.113",
        ["backend-c"] = "192.168.56.110",
        ["monitor"] = "192.168.56.120",
    };

    [Fact]
    public void Vagrantfile_IsValidRuby()
    {
        var result = Repo.Run("ruby", ["-c", "Vagrantfile"]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("Syntax OK", result.Stdout.Trim());
    }

    [Fact]
    public void Vagrantfile_DefinesTwoBalancersAndThePapersOtherMachines_OnTheHostOnlyNetwork_WithModestResources()
    {
        var machines = Machines();

        Assert.Equal(Topology.Keys.Order(StringComparer.Ordinal), machines.Select(m => m.Key).Order(StringComparer.Ordinal));
        foreach (var (name, ip) in Topology)
        {
            var machine = machines[name]!;
            Assert.Equal(name, (string?)machine["hostname"]);
            var network = Assert.Single(machine["networks"]!.AsArray());
            Assert.Equal("private_network", (string?)network!["type"]);
            Assert.Equal(ip, (string?)network["ip"]);

            var vb = machine["providers"]!["virtualbox"]!;
            var memory = (int)vb["memory"]!;
            var cpus = (int)vb["cpus"]!;
            Assert.InRange(memory, 512, 2048);
            Assert.InRange(cpus, 1, 2);
        }
    }

    [Fact]
    public void Vagrantfile_EveryMachineKnowsEveryOther_ByTheComposeNames()
    {
        foreach (var (name, machine) in Machines())
        {
            var hosts = Provision(machine!, "deploy/vagrant/common.sh")["args"]![0]!.GetValue<string>();
            var lines = hosts.Split(',').Select(l => l.Split(' ')).ToDictionary(f => f[1], f => f);
            foreach (var (other, ip) in Topology)
            {
                Assert.Equal(ip, lines[other][0]);
            }

            // The floating address by the paper's name; prometheus.yml scrapes each balancer VM by its own
            // name, so "balancer" (the compose service) must not resolve to the floating address as well.
            Assert.Equal(["192.168.56.103", "lb"], lines["lb"]);
            Assert.DoesNotContain(lines.Values, l => l.Contains("balancer"));
            Assert.Contains("prometheus", lines["monitor"]);
            Assert.True(lines.Count == Topology.Count + 1, $"{name}: {hosts}");
        }
    }

    [Fact]
    public void Vagrantfile_ProvisionsEachRole_WithScriptsInTheRepository()
    {
        var machines = Machines();

        foreach (var lb in new[] { "lb1", "lb2" })
        {
            Assert.Equal(["deploy/vagrant/common.sh", "deploy/vagrant/dotnet.sh", "deploy/vagrant/lb.sh", "deploy/vagrant/keepalived.sh"], Paths(machines[lb]!));
        }

        Assert.Equal(["deploy/vagrant/common.sh", "deploy/vagrant/monitor.sh"], Paths(machines["monitor"]!));
        foreach (var (machine, name) in new[] { ("backend-a", "A"), ("backend-b", "B"), ("backend-c", "C") })
        {
            Assert.Equal(["deploy/vagrant/common.sh", "deploy/vagrant/dotnet.sh", "deploy/vagrant/backend.sh"], Paths(machines[machine]!));
            var args = Provision(machines[machine]!, "deploy/vagrant/backend.sh")["args"]!.AsArray().Select(a => a!.GetValue<string>()).ToArray();
            Assert.Equal(name, args[0]);

            // The backend listens where the shared balancer config sends its traffic.
            var destination = new Uri(DeployConfig.Destinations()[name]);
            Assert.Equal(machine, destination.Host);
            Assert.Equal(destination.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), args[1]);
            // backend.sh serves gRPC on PORT+1000, where the config's grpc cluster sends calls.
            var grpc = new Uri(DeployConfig.Destinations("grpc")[name]);
            Assert.Equal((machine, destination.Port + 1000), (grpc.Host, grpc.Port));
        }

        foreach (var path in machines.SelectMany(m => Paths(m.Value!)).Distinct())
        {
            Assert.True(File.Exists(Repo.PathOf(path)), $"{path} is provisioned but not in the repository");
        }
    }

    [Fact]
    public void LbVms_GetACertificate_ForTheFloatingAndTheirOwnAddressAndNames_WhereTheShippedConfigReadsIt_BeforeTheConfigIsChecked()
    {
        foreach (var lb in new[] { "lb1", "lb2" })
        {
            Assert.Equal([Floating, "lb", "balancer", lb, Topology[lb]], Args(Machines()[lb]!, "deploy/vagrant/lb.sh"));
        }

        // lb.sh hands its arguments to the script as the certificate's names, the key to the unit's group,
        // into the folder of the shipped config's Tls paths; before --check-config, which loads the pair.
        var lines = Repo.Read("deploy/vagrant/lb.sh").Split('\n').Select(l => l.Trim()).ToList();
        var make = lines.FindIndex(l => l.StartsWith("bash ", StringComparison.Ordinal) && l.Contains("self-signed-cert.sh", StringComparison.Ordinal));
        Assert.Equal($"bash \"$repo/{SelfSignedCertTests.Script}\" --group balancer {Path.GetDirectoryName(DeployConfig.CertificatePath)} \"$@\"", lines[make]);
        Assert.Equal(Path.GetDirectoryName(DeployConfig.CertificatePath), Path.GetDirectoryName(DeployConfig.KeyPath));
        Assert.InRange(make, 0, lines.FindIndex(l => l.Contains("--check-config", StringComparison.Ordinal)) - 1);
        Assert.InRange(lines.FindIndex(l => l.StartsWith("systemd-sysusers", StringComparison.Ordinal)), 0, make - 1);
    }

    [Fact]
    public void LbVms_ShareTheFloatingAddress_ByUnicastToEachOther_Lb1Preferred()
    {
        var machines = Machines();

        Assert.Equal(["lb1", Topology["lb1"], $"{Floating}/24", "250", Topology["lb2"]], Args(machines["lb1"]!, "deploy/vagrant/keepalived.sh"));
        Assert.Equal(["lb2", Topology["lb2"], $"{Floating}/24", "240", Topology["lb1"]], Args(machines["lb2"]!, "deploy/vagrant/keepalived.sh"));
    }

    [Fact]
    public void Prometheus_ScrapesEachBalancerVm_ByItsOwnName_WithItsInstanceLabel()
    {
        var balancer = Repo.Yaml(Repo.Read("prometheus.yml"))["scrape_configs"]!.AsArray().Single(j => (string?)j!["job_name"] == "balancer")!;
        var groups = balancer["static_configs"]!.AsArray()
            .Where(g => g!["labels"] is not null)
            .ToDictionary(g => (string)g!["labels"]!["instance"]!, g => g!["targets"]!.AsArray().Select(t => (string)t!).ToArray());

        Assert.Equal(["lb1", "lb2"], groups.Keys.Order(StringComparer.Ordinal));
        // Each at the management listener of the config the VMs run.
        var management = new Uri((string)DeployConfig.Load()["Balancer"]!["Management"]!["Listen"]!);
        Assert.All(groups, g => Assert.Equal([$"{g.Key}:{management.Port}"], g.Value));
    }

    /// <summary>
    /// keepalived.sh as lb1 provisions it, in a namespace with lb1's address on an interface of another name
    /// than the VM's: it finds the interface by the address, and keepalived accepts what it renders.
    /// </summary>
    [NamespaceFact]
    public async Task KeepalivedScript_RendersAConfigKeepalivedAccepts_OnTheInterfaceCarryingTheOwnAddress()
    {
        var args = Args(Machines()["lb1"]!, "deploy/vagrant/keepalived.sh");
        await using var lab = NetworkLab.Create();
        var host = lab.AddHost("vlb1", $"{Topology["lb1"]}/24");
        var scripts = Repo.PathOf("deploy/keepalived");
        var directory = Directory.CreateTempSubdirectory("vagrant-keepalived-").FullName;
        try
        {
            var conf = lab.Run(host, ["env", $"REPO={Repo.PathOf(".")}", $"LB_SCRIPTS={scripts}", "LB_SCRIPT_USER=root", "bash", Repo.PathOf("deploy/vagrant/keepalived.sh"), "--render", .. args]);
            var file = Path.Combine(directory, "keepalived.conf");
            File.WriteAllText(file, conf);

            // Throws with keepalived's complaints when it exits non-zero.
            lab.Run(host, "keepalived", "--config-test", "--log-console", "--use-file", file);

            Assert.Contains("router_id lb1\n", conf, StringComparison.Ordinal);
            Assert.Contains("interface eth0\n", conf, StringComparison.Ordinal);
            Assert.Contains("priority 250\n", conf, StringComparison.Ordinal);
            Assert.Contains($"unicast_src_ip {Topology["lb1"]}\n    unicast_peer {{\n        {Topology["lb2"]}\n    }}", conf, StringComparison.Ordinal);
            Assert.Contains($"{Floating}/24 dev eth0", conf, StringComparison.Ordinal);
            Assert.Contains($"script \"{scripts}/check_balancer.sh http://127.0.0.1:9091/readyz\"", conf, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Vagrantfile_PublishesTheAppsOnTheHost_BeforeUpAndProvision()
    {
        var trigger = Assert.Single(Dsl()["triggers"]!.AsArray())!;

        Assert.Equal("before", (string?)trigger["at"]);
        Assert.Contains("up", trigger["commands"]!.AsArray().Select(c => (string?)c));
        Assert.Contains("provision", trigger["commands"]!.AsArray().Select(c => (string?)c));
        Assert.Equal("deploy/vagrant/publish.sh", (string?)trigger["run"]!["path"]);
    }

    [Fact]
    public void ProvisioningScripts_PassShellcheck()
    {
        // deploy/keepalived has its own check (KeepalivedConfigTests): two of its scripts are POSIX sh.
        var scripts = Directory.GetFiles(Repo.PathOf("deploy"), "*.sh", SearchOption.AllDirectories)
            .Where(p => !p.StartsWith(Repo.PathOf("deploy/keepalived"), StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(["publish.sh", "self-signed-cert.sh", "backend.sh", "common.sh", "dotnet.sh", "keepalived.sh", "lb.sh", "monitor.sh", "publish.sh"], scripts.Select(Path.GetFileName));

        var result = Repo.Run("shellcheck", ["--severity=style", "--shell=bash", .. scripts]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(string.Empty, result.Stdout);
    }

    [Fact]
    public void HostsScript_WritesTheTopologyBlockOnce_AndKeepsOtherEntries_WhenRunAgain()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "127.0.0.1 localhost\n127.0.1.1 lb lb\n");
            var env = new Dictionary<string, string?> { ["HOSTS_FILE"] = file };

            var first = Repo.Run("bash", ["deploy/vagrant/common.sh", "192.168.56.103 lb balancer,192.168.56.109 backend-a"], env: env);
            var second = Repo.Run("bash", ["deploy/vagrant/common.sh", "192.168.56.103 lb balancer,192.168.56.113 backend-b"], env: env);

            Assert.True(first.ExitCode == 0, first.ToString());
            Assert.True(second.ExitCode == 0, second.ToString());
            Assert.Equal(
                "127.0.0.1 localhost\n127.0.1.1 lb lb\n# BEGIN yarp-balancer topology\n192.168.56.103 lb balancer\n192.168.56.113 backend-b\n# END yarp-balancer topology\n",
                File.ReadAllText(file));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void DotnetScript_PinsTheSameRuntimePatch_AsTheDockerfiles()
    {
        var script = Repo.Read("deploy/vagrant/dotnet.sh");
        var pinned = System.Text.RegularExpressions.Regex.Match(script, @"DOTNET_RUNTIME_VERSION:-(10\.0\.\d+)\}").Groups[1].Value;

        Assert.Equal(DockerfileTests.RuntimeVersion("src/Balancer/Dockerfile"), pinned);
        Assert.Equal(DockerfileTests.RuntimeVersion("src/SampleBackend/Dockerfile"), pinned);
    }

    private static JsonNode Dsl()
    {
        var result = Repo.Run("ruby", ["tests/Balancer.Tests/Deployment/vagrantfile_dsl.rb", "Vagrantfile"]);
        Assert.True(result.ExitCode == 0, result.ToString());
        return JsonNode.Parse(result.Stdout)!;
    }

    private static JsonObject Machines() => Dsl()["machines"]!.AsObject();

    private static string[] Paths(JsonNode machine) =>
        [.. machine["provisions"]!.AsArray().Select(p => (string)p!["path"]!)];

    private static string[] Args(JsonNode machine, string path) =>
        [.. Provision(machine, path)["args"]!.AsArray().Select(a => a!.GetValue<string>())];

    private static JsonNode Provision(JsonNode machine, string path) =>
        machine["provisions"]!.AsArray().Single(p => (string?)p!["path"] == path)!;
}
