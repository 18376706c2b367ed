using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Balancer.Tests.Deployment;

/// <summary>
/// deploy/tls/self-signed-cert.sh, the provisioning step of compose (tls-init), the lb VM and systemd hosts,
/// run for real with bash and openssl in a temporary folder: what it makes, and that it never overwrites.
/// </summary>
public sealed class SelfSignedCertTests : IDisposable
{
    internal const string Script = "deploy/tls/self-signed-cert.sh";

    private readonly string _directory = Directory.CreateTempSubdirectory("self-signed-cert-").FullName;

    private string Tls => Path.Combine(_directory, "tls");

    private string CertificatePath => Path.Combine(Tls, "tls.crt");

    private string KeyPath => Path.Combine(Tls, "tls.key");

    /// <summary>Runs the script as provisioning does; the folder it makes the pair in is <paramref name="directory"/>.</summary>
    internal static ToolResult Run(string directory, params string[] args) => Repo.Run("bash", [Repo.PathOf(Script), .. Arguments(directory, args)]);

    [Fact]
    public void NoCertificate_MakesAMatchingPair_ForTheNamesGiven_ServerAuthOnly_KeyPrivate()
    {
        var result = Run(Tls, "balancer.example.test", "lb", "192.168.56.103", "::1");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains($"made {CertificatePath} and {KeyPath}", result.Stdout, StringComparison.Ordinal);
        using var certificate = X509Certificate2.CreateFromPemFile(CertificatePath, KeyPath);
        Assert.True(certificate.HasPrivateKey);
        Assert.Equal(certificate.Subject, certificate.Issuer);
        Assert.Equal("CN=balancer.example.test", certificate.Subject);
        using (var key = certificate.GetECDsaPublicKey())
        {
            Assert.NotNull(key);
            Assert.Equal(256, key!.KeySize);
        }

        var san = Assert.Single(certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.Equal(["balancer.example.test", "lb"], san.EnumerateDnsNames());
        Assert.Equal([IPAddress.Parse("192.168.56.103"), IPAddress.IPv6Loopback], san.EnumerateIPAddresses());
        var constraints = Assert.Single(certificate.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.False(constraints.CertificateAuthority);
        var usage = Assert.Single(certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>());
        Assert.Equal(["1.3.6.1.5.5.7.3.1"], usage.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value!));
        Assert.InRange(certificate.NotBefore.ToUniversalTime(), DateTime.UtcNow.AddMinutes(-5), DateTime.UtcNow.AddMinutes(1));
        Assert.InRange((certificate.NotAfter - certificate.NotBefore).TotalDays, 364.9, 365.1);

        // The key is for the balancer's eyes only: no --group, no one but the owner.
        Assert.Equal("600", Mode(KeyPath));
        Assert.Equal("644", Mode(CertificatePath));
        Assert.Equal(["tls.crt", "tls.key"], Directory.GetFileSystemEntries(Tls).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Group_MakesTheKeyReadableByThatGroupOnly()
    {
        var group = Repo.Run("id", ["-gn"]).Stdout.Trim();

        var result = Run(Tls, "--group", group, "--days", "30", "localhost");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("640", Mode(KeyPath));
        Assert.Equal(group, Repo.Run("stat", ["-c", "%G", KeyPath]).Stdout.Trim());
        using var certificate = X509CertificateLoader.LoadCertificateFromFile(CertificatePath);
        Assert.InRange((certificate.NotAfter - certificate.NotBefore).TotalDays, 29.9, 30.1);
    }

    [Fact]
    public void ExistingFolder_KeepsItsMode_MissingFolderIsMadeReadableToAll()
    {
        Assert.Equal(0, Run(Tls, "localhost").ExitCode);
        Assert.Equal("755", Mode(Tls));

        var own = Path.Combine(_directory, "own");
        Directory.CreateDirectory(own);
        Assert.Equal(0, Repo.Run("chmod", ["0750", own]).ExitCode);
        var result = Run(own, "localhost");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal("750", Mode(own));
        Assert.True(File.Exists(Path.Combine(own, "tls.crt")) && File.Exists(Path.Combine(own, "tls.key")));
    }

    [Fact]
    public void RunAgain_KeepsThePairItMade_ByteForByte()
    {
        Assert.Equal(0, Run(Tls, "localhost").ExitCode);
        var certificate = File.ReadAllBytes(CertificatePath);
        var key = File.ReadAllBytes(KeyPath);
        var written = File.GetLastWriteTimeUtc(CertificatePath);

        var again = Run(Tls, "other.example.test");

        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("kept as they are", again.Stdout, StringComparison.Ordinal);
        Assert.Equal(certificate, File.ReadAllBytes(CertificatePath));
        Assert.Equal(key, File.ReadAllBytes(KeyPath));
        Assert.Equal(written, File.GetLastWriteTimeUtc(CertificatePath));
    }

    [Fact]
    public void RealCertificateInPlace_IsNeverOverwritten_EvenAsLinksToFilesNotThereYet()
    {
        Directory.CreateDirectory(Tls);
        var real = Path.Combine(_directory, "live");
        Directory.CreateDirectory(real);
        File.CreateSymbolicLink(CertificatePath, Path.Combine(real, "fullchain.pem"));
        File.CreateSymbolicLink(KeyPath, Path.Combine(real, "privkey.pem"));

        var result = Run(Tls, "localhost");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Empty(Directory.GetFileSystemEntries(real));
        Assert.Equal(Path.Combine(real, "fullchain.pem"), new FileInfo(CertificatePath).LinkTarget);
        Assert.Equal(Path.Combine(real, "privkey.pem"), new FileInfo(KeyPath).LinkTarget);
    }

    [Fact]
    public void OnlyOneFileOfThePair_TouchesNothing_AndSaysWhichIsMissing()
    {
        Directory.CreateDirectory(Tls);
        File.WriteAllText(KeyPath, "an operator's key, certificate still to come");

        var result = Run(Tls, "localhost");

        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{KeyPath} exists but {CertificatePath} does not", result.Stderr, StringComparison.Ordinal);
        Assert.Equal("an operator's key, certificate still to come", File.ReadAllText(KeyPath));
        Assert.Equal(["tls.key"], Directory.GetFileSystemEntries(Tls).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData(new[] { "--days", "a year", "localhost" }, "--days must be a whole number of days, not 'a year'")]
    [InlineData(new[] { "--owner", "x", "localhost" }, "unknown option '--owner'")]
    [InlineData(new string[0], "usage: self-signed-cert.sh")]
    public void BadArguments_ExitTwo_SayingWhy_AndMakeNothing(string[] args, string message)
    {
        var result = Run(Tls, args);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Tls));
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    /// <summary>The file's permission bits in octal, as stat shows them.</summary>
    private static string Mode(string path) => Repo.Run("stat", ["-c", "%a", path]).Stdout.Trim();

    /// <summary>Options first, then the folder, then the names, as the script's usage line has them.</summary>
    private static string[] Arguments(string directory, string[] args)
    {
        var options = new List<string>();
        var i = 0;
        while (i < args.Length && args[i].StartsWith("--", StringComparison.Ordinal))
        {
            options.Add(args[i]);
            options.Add(args[i + 1]);
            i += 2;
        }

        return [.. options, directory, .. args[i..]];
    }
}
