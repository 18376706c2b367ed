using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Tls;

/// <summary>Config edits shared by the TLS tests: listeners and certificate keys.</summary>
internal static partial class TlsConfig
{
    /// <summary>h2load's summary line: how many requests succeeded, failed and errored.</summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"requests: \d+ total, \d+ started, \d+ done, (?<succeeded>\d+) succeeded, (?<failed>\d+) failed, (?<errored>\d+) errored")]
    public static partial System.Text.RegularExpressions.Regex H2loadRequests();

    /// <summary>An http:// and an https:// proxy listener on ports the OS picks, with the default certificate.</summary>
    public static Action<JsonObject> Https(TestCertificates.Issued certificate, params string[] extraListeners) => config =>
    {
        var balancer = config["Balancer"]!.AsObject();
        balancer["Listen"] = new JsonArray([.. new[] { "http://127.0.0.1:0", "https://127.0.0.1:0" }.Concat(extraListeners).Select(l => (JsonNode)l)]);
        balancer["Tls"] = new JsonObject { ["CertificatePath"] = certificate.CertificatePath, ["KeyPath"] = certificate.KeyPath };
    };

    public static JsonObject Tls(JsonObject config) => config["Balancer"]!["Tls"]!.AsObject();

    /// <summary>The serial of the certificate the server presents for <paramref name="serverName"/> (none: no SNI), by openssl s_client.</summary>
    public static async Task<string> ServedSerialAsync(Uri address, string? serverName)
    {
        CommandLine.Require("openssl", "openssl");
        string[] args = ["s_client", "-connect", $"127.0.0.1:{address.Port}", .. serverName is null ? new[] { "-noservername" } : ["-servername", serverName]];
        var result = await CommandLine.RunAsync("openssl", args, TimeSpan.FromSeconds(20), input: "");
        var begin = result.Output.IndexOf("-----BEGIN CERTIFICATE-----", StringComparison.Ordinal);
        var end = result.Output.IndexOf("-----END CERTIFICATE-----", StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"openssl s_client showed no certificate (exit {result.ExitCode}): {result.Output}{result.Error}");
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(result.Output.AsSpan(begin, end + 25 - begin));
        return certificate.SerialNumber;
    }
}
