using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Balancer.Configuration;
using Balancer.Readiness;
using Microsoft.Extensions.Configuration;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;

namespace Balancer.Tests.Readiness;

/// <summary>
/// <c>Balancer:Shutdown:TrackFile</c> on a real listener: leaving stops new connections before the file tells
/// keepalived to move the address; coming back undoes both.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class AddressHandOverTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("handover-test-").FullName;

    private string TrackFile => Path.Combine(_directory, "leaving");

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Drain_NewConnectionsDroppedNotRefused_OpenOnesServed_FileSays1AfterThePause_EnableUndoesBoth()
    {
        await using var lb = await BalancerFixture.StartAsync(edit: c => c["Balancer"]!["Shutdown"] = new JsonObject { ["TrackFile"] = TrackFile });
        await Poll.UntilAsync(() => Read() == "0", TimeSpan.FromSeconds(10), "the track file to say 0 once the balancer serves");
        using var open = await RawHttp.ConnectAsync(lb.ProxyAddress);

        var drained = Stopwatch.StartNew();
        using (var response = await lb.Management.PostAsync("/api/instance/drain", null))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // A dropped SYN leaves the attempt pending (the client sends it again later); a refused one fails at once.
        Assert.Equal("pending", await ConnectAsync(lb.ProxyAddress, TimeSpan.FromMilliseconds(700)));
        await open.SendAsync("GET / HTTP/1.1\r\nHost: test\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200", await open.ReadToCloseAsync(TimeSpan.FromSeconds(10)), StringComparison.Ordinal);
        await Poll.UntilAsync(() => Read() == "1", TimeSpan.FromSeconds(10), "the track file to say 1");
        Assert.True(drained.Elapsed >= AddressHandOver.Settle, $"The file said 1 after {drained.ElapsedMilliseconds} ms, before requests on open connections had {AddressHandOver.Settle.TotalMilliseconds} ms to arrive.");

        using (var response = await lb.Management.PostAsync("/api/instance/enable", null))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Equal("0", Read());
        Assert.Equal("connected", await ConnectAsync(lb.ProxyAddress, TimeSpan.FromSeconds(5)));
        Assert.Equal(HttpStatusCode.OK, (await lb.Client.GetAsync("/")).StatusCode);
    }

    [Fact]
    public void TrackFileInADirectoryThatDoesNotExist_RejectedNamingTheKey()
    {
        var missing = Path.Combine(_directory, "no-such-dir", "leaving");
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Balancer:Shutdown:TrackFile"] = missing,
            ["ReverseProxy:Clusters:c:Destinations:A:Address"] = "http://127.0.0.1:5001/",
        }).Build();

        var error = Assert.Single(ConfigValidator.Validate(config));

        Assert.Equal($"Balancer:Shutdown:TrackFile: the directory of '{missing}' does not exist", error);
    }

    private string? Read() => File.Exists(TrackFile) ? File.ReadAllText(TrackFile).Trim() : null;

    /// <summary>"connected", "refused", or "pending" when no answer came within <paramref name="wait"/>.</summary>
    private static async Task<string> ConnectAsync(Uri address, TimeSpan wait)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            await socket.ConnectAsync(IPAddress.Parse(address.Host), address.Port, timeout.Token);
            return "connected";
        }
        catch (OperationCanceledException)
        {
            return "pending";
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            return "refused";
        }
    }
}
