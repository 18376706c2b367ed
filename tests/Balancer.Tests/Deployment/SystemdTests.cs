namespace Balancer.Tests.Deployment;

/// <summary>
/// The systemd units, checked by systemd's own tools offline: <c>systemd-analyze verify</c> (syntax, known
/// directives, ExecStart binary present; this machine has /usr/bin/dotnet, as the VMs will),
/// <c>systemd-analyze security --offline</c> (sandboxing score) and <c>systemd-sysusers --root</c> (the
/// dedicated users are created as the units expect). Not started: no systemd runs as PID 1 here.
/// </summary>
public sealed class SystemdTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("systemd-units-").FullName;

    public static TheoryData<string, string, string> Units => new()
    {
        // file, the instance systemd-analyze checks, the dedicated user
        { "balancer.service", "balancer.service", "balancer" },
        { "sample-backend@.service", "sample-backend@A.service", "sample-backend" },
    };

    [Theory]
    [MemberData(nameof(Units))]
    public void Unit_PassesSystemdAnalyzeVerify_WithoutWarnings(string file, string instance, string user)
    {
        Copy(file);

        var result = Repo.Run("systemd-analyze", ["verify", Path.Combine(_directory, instance)]);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.True(result.Stderr.Trim().Length == 0, $"{file} ({user}): {result.Stderr}");
    }

    [Theory]
    [MemberData(nameof(Units))]
    public void Unit_IsSandboxed_ExposureAtMostThree(string file, string instance, string user)
    {
        Copy(file);

        // --threshold=30 fails the command when systemd's exposure score is above 3.0 ("OK" on its scale).
        var result = Repo.Run("systemd-analyze", ["security", "--offline=true", "--threshold=30", "--no-pager", Path.Combine(_directory, instance)]);

        Assert.True(result.ExitCode == 0, $"{file} ({user}) is not sandboxed enough: {result.Stdout}{result.Stderr}");
        Assert.Contains($"Overall exposure level for {instance}:", result.Stdout, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Units))]
    public void Unit_RunsAsItsDedicatedUser_WithTheRequiredHardening(string file, string instance, string user)
    {
        var directives = Directives(file);

        Assert.Equal(user, directives["User"].Single());
        Assert.Equal(user, directives["Group"].Single());
        Assert.Equal("yes", directives["NoNewPrivileges"].Single());
        Assert.Equal("strict", directives["ProtectSystem"].Single());
        Assert.Equal("yes", directives["ProtectHome"].Single());
        Assert.Equal("yes", directives["PrivateTmp"].Single());
        Assert.Equal("on-failure", directives["Restart"].Single());
        Assert.Single(directives["ReadOnlyPaths"]);
        Assert.Equal(string.Empty, directives["CapabilityBoundingSet"].Single());
        Assert.False(directives.Contains("MemoryDenyWriteExecute"), $"{instance}: the .NET JIT needs writable+executable memory");
        Assert.Equal("multi-user.target", directives["WantedBy"].Single());
    }

    [Fact]
    public void Units_StartThePublishedApps_WithTheirConfig()
    {
        Assert.Equal("/usr/bin/dotnet /opt/balancer/Balancer.dll --config /etc/balancer/balancer.json", Directives("balancer.service")["ExecStart"].Single());
        Assert.Equal("/usr/bin/dotnet /opt/sample-backend/SampleBackend.dll --name %i", Directives("sample-backend@.service")["ExecStart"].Single());
        Assert.Contains("-/etc/sample-backend/%i.env", Directives("sample-backend@.service")["EnvironmentFile"]);
    }

    [Fact]
    public void Balancer_CanReadTheCertificateTheShippedConfigNames_AndIsToldHowToMakeIt()
    {
        var directives = Directives("balancer.service");

        // Under its read-only config folder, outside what the sandbox hides (ProtectHome, PrivateTmp).
        foreach (var path in new[] { DeployConfig.CertificatePath, DeployConfig.KeyPath })
        {
            Assert.StartsWith(directives["ReadOnlyPaths"].Single() + "/", path, StringComparison.Ordinal);
            Assert.DoesNotMatch("^/(home|root|run/user|tmp|var/tmp)/", path);
        }

        Assert.False(directives.Contains("InaccessiblePaths"));
        Assert.Contains(
            $"#   {SelfSignedCertTests.Script} --group balancer {Path.GetDirectoryName(DeployConfig.CertificatePath)} ",
            Repo.Read("deploy/systemd/balancer.service"),
            StringComparison.Ordinal);
    }

    [Fact]
    public void FloatingAddressDropIn_PassesVerify_TurnsTheOptionsOn_TrackFileWhereKeepalivedWatches_AddsCapNetRawOnly()
    {
        Copy("balancer.service");
        var dropIns = Directory.CreateDirectory(Path.Combine(_directory, "balancer.service.d")).FullName;
        File.Copy(Repo.PathOf("deploy/systemd/balancer-floating-address.conf"), Path.Combine(dropIns, "floating-address.conf"));

        var verify = Repo.Run("systemd-analyze", ["verify", Path.Combine(_directory, "balancer.service")]);
        var directives = Directives("balancer-floating-address.conf");

        Assert.True(verify.ExitCode == 0 && verify.Stderr.Trim().Length == 0, verify.ToString());
        Assert.Equal(["Environment", "RuntimeDirectory", "RuntimeDirectoryPreserve", "CapabilityBoundingSet", "AmbientCapabilities"], directives.Select(d => d.Key));
        Assert.Equal(["Balancer__Shutdown__FloatingAddress=true", "Balancer__Shutdown__TrackFile=/run/balancer/leaving"], directives["Environment"]);
        Assert.Equal("balancer", directives["RuntimeDirectory"].Single());
        Assert.Equal("yes", directives["RuntimeDirectoryPreserve"].Single());
        // The path render.sh gives keepalived's track_file by default.
        Assert.Contains("[LB_TRACK_FILE]=${LB_TRACK_FILE:-/run/balancer/leaving}", Repo.Read("deploy/keepalived/render.sh"), StringComparison.Ordinal);
        Assert.Equal("CAP_NET_RAW", directives["CapabilityBoundingSet"].Single());
        Assert.Equal("CAP_NET_RAW", directives["AmbientCapabilities"].Single());
        Assert.Contains("deploy/systemd/balancer-floating-address.conf\" /etc/systemd/system/balancer.service.d/floating-address.conf", Repo.Read("deploy/vagrant/keepalived.sh"), StringComparison.Ordinal);
    }

    [Fact]
    public void Sysusers_CreatesTheUnitsUsers_WithoutLogin()
    {
        Directory.CreateDirectory(Path.Combine(_directory, "etc"));

        var result = Repo.Run("systemd-sysusers", [$"--root={_directory}", Repo.PathOf("deploy/systemd/yarp-balancer.sysusers.conf")]);

        Assert.True(result.ExitCode == 0, result.ToString());
        var users = File.ReadAllLines(Path.Combine(_directory, "etc", "passwd")).Select(l => l.Split(':')).ToDictionary(f => f[0]);
        foreach (var user in new[] { "balancer", "sample-backend" })
        {
            Assert.Equal("/usr/sbin/nologin", users[user][6]);
            Assert.Equal("/nonexistent", users[user][5]);
            Assert.InRange(int.Parse(users[user][2], System.Globalization.CultureInfo.InvariantCulture), 1, 999);
        }
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static ILookup<string, string> Directives(string file) =>
        Repo.Read($"deploy/systemd/{file}").Split('\n')
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#') && !l.StartsWith('[') && l.Contains('='))
            .ToLookup(l => l[..l.IndexOf('=')], l => l[(l.IndexOf('=') + 1)..]);

    private void Copy(string file) => File.Copy(Repo.PathOf($"deploy/systemd/{file}"), Path.Combine(_directory, file), overwrite: true);
}
