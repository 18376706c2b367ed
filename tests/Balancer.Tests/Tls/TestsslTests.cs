using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Xunit.Abstractions;

namespace Balancer.Tests.Tls;

/// <summary>
/// testssl.sh against the https:// listener: protocols, ciphers, forward secrecy, server defaults and
/// the known vulnerabilities. Not in the serial integration collection: the scan takes about a minute of
/// handshakes and nothing in it depends on timing.
/// </summary>
[Collection(TestsslCollection.Name)]
public sealed class TestsslTests(ITestOutputHelper output) : IDisposable
{
    private readonly TestCertificates _certificates = new();

    [Fact]
    public async Task HttpsListener_HasNoFindingRatedHighOrCritical_OnlyTls12And13()
    {
        var testssl = CommandLine.Require("testssl", "testssl.sh");
        // A certificate as a public CA would issue it (a year's validity, a CRL distribution point), so
        // that what the scan rates is the listener's TLS settings rather than the test certificate.
        var certificate = _certificates.Issue("server", notAfter: DateTimeOffset.UtcNow.AddDays(365), crlUri: "http://crl.example.test/ca.crl");
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", TlsConfig.Https(certificate));
        var report = Path.Combine(_certificates.Directory, "testssl.json");

        // No DNS, no fetching of CRLs or OCSP (--phone-out stays off): only the loopback listener is contacted.
        var result = await CommandLine.RunAsync(testssl,
            ["--quiet", "--color", "0", "--warnings", "batch", "--nodns", "none", "--fast", "--connect-timeout", "10", "--openssl-timeout", "10",
             "--add-ca", _certificates.CaPath, "--jsonfile", report,
             "--protocols", "--std", "--fs", "--server-defaults", "--server-preference", "--vulnerable",
             $"127.0.0.1:{lb.ListenerOf("https").Port}"],
            // A minute on an idle machine, 3.5 on one loaded by other builds and tests: a deadline, not a measure.
            TimeSpan.FromMinutes(10));

        Assert.True(File.Exists(report), $"testssl wrote no report (exit {result.ExitCode}): {result.Output}{result.Error}");
        var findings = JsonNode.Parse(await File.ReadAllTextAsync(report))!.AsArray()
            .Select(f => (Id: (string)f!["id"]!, Severity: (string)f["severity"]!, Finding: (string)f["finding"]!))
            .ToList();
        foreach (var finding in findings.Where(f => f.Severity is not ("OK" or "INFO")))
        {
            output.WriteLine($"{finding.Severity} {finding.Id}: {finding.Finding}");
        }

        // The scan ran to its end: its last entry is the scan time.
        Assert.Contains(findings, f => f.Id == "scanTime");
        Assert.DoesNotContain(findings, f => f.Severity is "HIGH" or "CRITICAL");
        var offered = findings.Where(f => f.Id is "SSLv2" or "SSLv3" or "TLS1" or "TLS1_1" or "TLS1_2" or "TLS1_3")
            .ToDictionary(f => f.Id, f => f.Finding.StartsWith("offered", StringComparison.Ordinal));
        Assert.Equal(new Dictionary<string, bool> { ["SSLv2"] = false, ["SSLv3"] = false, ["TLS1"] = false, ["TLS1_1"] = false, ["TLS1_2"] = true, ["TLS1_3"] = true }, offered);
        Assert.Contains(findings, f => f.Id == "ALPN_HTTP2" && f.Finding == "h2");
        Assert.Contains(findings, f => f.Id == "heartbleed" && f.Severity == "OK");
        Assert.Contains(findings, f => f.Id == "ROBOT" && f.Severity == "OK");
    }

    public void Dispose() => _certificates.Dispose();
}
