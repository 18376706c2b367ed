using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// A real DNS server (Debian's dnsmasq) on 127.0.0.1 at a port chosen at start, answering only from a hosts
/// file of its own that <see cref="SetAsync"/> rewrites (dnsmasq reads it again on SIGHUP). Nothing else is
/// asked or forwarded.
/// </summary>
internal sealed class DnsServer : IAsyncDisposable
{
    private readonly string _directory;
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private DnsServer(string directory, Process process, int port)
    {
        _directory = directory;
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>What to put in <c>Balancer:Discovery:NameServers</c>.</summary>
    public string NameServer => $"127.0.0.1:{Port}";

    private string HostsFile => Path.Combine(_directory, "hosts");

    public static async Task<DnsServer> StartAsync(string name, params string[] addresses)
    {
        var directory = Directory.CreateTempSubdirectory("dns-server-").FullName;
        await File.WriteAllTextAsync(Path.Combine(directory, "hosts"), Hosts(name, addresses));
        // dnsmasq takes its port as a number: the OS picks a free one, and a start that lost the race tries another.
        for (var attempt = 1; ; attempt++)
        {
            var port = FreeUdpPort();
            var start = new ProcessStartInfo("dnsmasq") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var arg in new[]
            {
                "--keep-in-foreground", "--log-facility=-", "--pid-file=", "--conf-file=/dev/null",
                // Authoritative for the name: a type it has no record of (AAAA) gets an empty answer, not a refusal.
                "--no-resolv", "--no-hosts", "--addn-hosts=" + Path.Combine(directory, "hosts"), "--local-ttl=1", $"--local=/{name}/",
                "--bind-interfaces", "--listen-address=127.0.0.1", "--port=" + port, "--user=" + Environment.UserName,
            })
            {
                start.ArgumentList.Add(arg);
            }

            var process = Process.Start(start)!;
            var server = new DnsServer(directory, process, port);
            process.ErrorDataReceived += (_, e) => server.Append(e.Data);
            process.OutputDataReceived += (_, e) => server.Append(e.Data);
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            try
            {
                await Poll.UntilAsync(() => process.HasExited || server.Answers(name), TimeSpan.FromSeconds(10), $"dnsmasq to answer on port {port}: {server.Output}");
            }
            catch
            {
                await server.DisposeAsync();
                throw;
            }

            if (!process.HasExited)
            {
                return server;
            }

            var output = server.Output;
            await server.StopAsync();
            if (attempt == 3 || !output.Contains("Address already in use", StringComparison.Ordinal))
            {
                Directory.Delete(directory, recursive: true);
                throw new InvalidOperationException($"dnsmasq did not start: {output}");
            }
        }
    }

    private string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>From now on <paramref name="name"/> has exactly these A records.</summary>
    public async Task SetAsync(string name, params string[] addresses)
    {
        var replacement = HostsFile + ".new";
        await File.WriteAllTextAsync(replacement, Hosts(name, addresses));
        File.Move(replacement, HostsFile, overwrite: true);
        using var hup = Process.Start("kill", ["-HUP", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        await hup.WaitForExitAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        Directory.Delete(_directory, recursive: true);
    }

    private static string Hosts(string name, string[] addresses) => string.Concat(addresses.Select(a => $"{a} {name}\n"));

    private static int FreeUdpPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private async Task StopAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    /// <summary>True once the server answers a query for <paramref name="name"/> (any answer will do).</summary>
    private bool Answers(string name)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 200 };
        try
        {
            socket.SendTo(Query(name), new IPEndPoint(IPAddress.Loopback, Port));
            return socket.Receive(new byte[512]) > 12;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>A minimal DNS query (RFC 1035 4.1): header with one question, the name as labels, type A, class IN.</summary>
    private static byte[] Query(string name)
    {
        var query = new List<byte> { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
        foreach (var label in name.Split('.'))
        {
            query.Add((byte)label.Length);
            query.AddRange(Encoding.ASCII.GetBytes(label));
        }

        query.AddRange([0, 0, 1, 0, 1]);
        return [.. query];
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
