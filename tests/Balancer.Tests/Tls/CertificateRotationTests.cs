using System.Diagnostics;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Tls;

/// <summary>Certificates replaced on disk while the balancer serves: new connections get the new one, nothing fails.</summary>
[Collection(IntegrationCollection.Name)]
public sealed class CertificateRotationTests : IDisposable
{
    private readonly TestCertificates _certificates = new();

    [Fact]
    public async Task ReplacedFiles_UnderH2loadLoad_NewSerialWithin5s_NoFailedRequest_BrokenReplacementKeepsIt()
    {
        var first = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(first));
        var https = lb.ListenerOf("https");
        Assert.Equal(first.Serial, await TlsConfig.ServedSerialAsync(https, null));

        // Long enough to cover both replacements; h2load's connections stay open across them.
        var load = CommandLine.RunAsync(
            CommandLine.Require("h2load", "nghttp2-client"),
            ["-c", "4", "-m", "4", "-D", "12", new Uri(https, "/").ToString()],
            TimeSpan.FromSeconds(90));

        var second = _certificates.Renew(first);
        second.Write();
        var replaced = Stopwatch.StartNew();
        await Poll.UntilAsync(async () => await TlsConfig.ServedSerialAsync(https, null) == second.Serial, TimeSpan.FromSeconds(5), "the new certificate on a new connection");
        replaced.Stop();

        // A broken replacement: a certificate whose key is another one's.
        var broken = _certificates.Renew(second) with { KeyPem = _certificates.Renew(second).KeyPem };
        broken.Write();
        await Poll.UntilAsync(
            async () => (string?)(await lb.StatusAsync())["certificates"]![0]!["error"] is { } error && error.Contains("does not match", StringComparison.Ordinal),
            TimeSpan.FromSeconds(15),
            "the rejected replacement in /status");
        var status = await lb.StatusAsync();
        Assert.Equal(second.Serial, (string?)status["certificates"]![0]!["serial"]);
        Assert.Equal("failure", (string?)status["lastReload"]!["result"]);
        Assert.Contains(broken.KeyPath, (string?)status["lastReload"]!["error"], StringComparison.Ordinal);
        Assert.Equal(second.Serial, await TlsConfig.ServedSerialAsync(https, null));
        var metrics = await lb.MetricsAsync();
        Assert.Equal(1, metrics.Single(s => s.Name == "balancer_config_reloads_total" && s.Labels["result"] == "failure").Value);
        Assert.Equal(1, metrics.Single(s => s.Name == "balancer_tls_certificate_rejected" && s.Labels["name"] == "default").Value);

        var result = await load;
        Assert.True(result.ExitCode == 0, result.Output + result.Error);
        var requests = TlsConfig.H2loadRequests().Match(result.Output);
        Assert.True(requests.Success, result.Output);
        Assert.True(long.Parse(requests.Groups["succeeded"].Value, System.Globalization.CultureInfo.InvariantCulture) > 0, result.Output);
        Assert.Equal(("0", "0"), (requests.Groups["failed"].Value, requests.Groups["errored"].Value));
        Assert.True(replaced.Elapsed < TimeSpan.FromSeconds(5), $"took {replaced.Elapsed}");
    }

    [Fact]
    public async Task HalfReplacedPair_IsNotLoaded_ThenLoadsWhenBothMatch_WithoutAFailure()
    {
        var first = _certificates.Issue("server");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(first));
        var https = lb.ListenerOf("https");
        var second = _certificates.Renew(first);

        // The renewal tool writes the key first; the old certificate beside it does not match.
        File.WriteAllText(second.KeyPath, second.KeyPem);
        Assert.Equal(first.Serial, await TlsConfig.ServedSerialAsync(https, null));
        File.WriteAllText(second.CertificatePath, second.CertificatePem);

        await Poll.UntilAsync(async () => await TlsConfig.ServedSerialAsync(https, null) == second.Serial, TimeSpan.FromSeconds(5), "the new pair");
        var metrics = await lb.MetricsAsync();
        Assert.Equal(0, metrics.Single(s => s.Name == "balancer_config_reloads_total" && s.Labels["result"] == "failure").Value);
        Assert.Null((string?)(await lb.StatusAsync())["certificates"]![0]!["error"]);
    }

    [Fact]
    public async Task SymlinkSwap_OfTheCertificateFolder_IsPickedUp()
    {
        // The layout of a Kubernetes secret volume: the configured paths go through a "..data" link that is swapped at once.
        Directory.CreateDirectory(Path.Combine(_certificates.Directory, "v1"));
        var first = _certificates.Issue("v1/tls");
        Directory.CreateDirectory(Path.Combine(_certificates.Directory, "v2"));
        var second = _certificates.Renew(first) with
        {
            CertificatePath = Path.Combine(_certificates.Directory, "v2", "tls.crt"),
            KeyPath = Path.Combine(_certificates.Directory, "v2", "tls.key"),
        };
        second.Write();
        var mount = Directory.CreateDirectory(Path.Combine(_certificates.Directory, "mount")).FullName;
        File.CreateSymbolicLink(Path.Combine(mount, "..data"), Path.Combine(_certificates.Directory, "v1"));
        File.CreateSymbolicLink(Path.Combine(mount, "tls.crt"), "..data/tls.crt");
        File.CreateSymbolicLink(Path.Combine(mount, "tls.key"), "..data/tls.key");
        var mounted = first with { CertificatePath = Path.Combine(mount, "tls.crt"), KeyPath = Path.Combine(mount, "tls.key") };
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(mounted));
        var https = lb.ListenerOf("https");
        Assert.Equal(first.Serial, await TlsConfig.ServedSerialAsync(https, null));

        var swap = Path.Combine(mount, "..data_tmp");
        File.CreateSymbolicLink(swap, Path.Combine(_certificates.Directory, "v2"));
        // rename(2) of the new link over the old one, as the kubelet does; File.Move refuses links to folders.
        var renamed = await CommandLine.RunAsync("mv", ["-T", swap, Path.Combine(mount, "..data")], TimeSpan.FromSeconds(10));
        Assert.True(renamed.ExitCode == 0, renamed.Error);

        await Poll.UntilAsync(async () => await TlsConfig.ServedSerialAsync(https, null) == second.Serial, TimeSpan.FromSeconds(5), "the certificate behind the swapped link");
    }

    public void Dispose() => _certificates.Dispose();
}
