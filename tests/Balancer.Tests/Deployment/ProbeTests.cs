using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Deployment;

/// <summary>
/// The <c>--probe</c> mode the container HEALTHCHECKs run, through each app's real entry point against
/// real listeners: 0 for a 2xx answer, 1 for anything else or no answer, 2 for a target it cannot use.
/// </summary>
[Collection(Integration.FunctionalCollection.Name)]
public sealed class ProbeTests : IDisposable
{
    private readonly TextWriter _out = Console.Out;
    private readonly TextWriter _error = Console.Error;
    private readonly StringWriter _output = new();

    public ProbeTests()
    {
        Console.SetOut(_output);
        Console.SetError(_output);
    }

    [Fact]
    public async Task BackendProbe_PathResolvedAgainstItsUrls_ZeroWhileHealthy_OneOnceUnhealthy()
    {
        await using var backend = await BackendHost.StartAsync("A");
        var urls = $"http://0.0.0.0:{backend.Address.Port}";

        Assert.Equal(0, SampleBackend.Program.Main(["--probe", "/health", "--urls", urls]));
        Assert.Contains($"http://127.0.0.1:{backend.Address.Port}/health: 200", _output.ToString(), StringComparison.Ordinal);

        backend.State.Healthy = false;

        Assert.Equal(1, SampleBackend.Program.Main(["--probe", "/health", "--urls", urls]));
        Assert.Contains($"http://127.0.0.1:{backend.Address.Port}/health: 503", _output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BackendProbe_NothingListening_ExitsOne()
    {
        var backend = await BackendHost.StartAsync("B");
        var url = new Uri(backend.Address, "/health").ToString();
        await backend.StopAsync();

        Assert.Equal(1, SampleBackend.Program.Main(["--probe", url]));
        Assert.Contains(url, _output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Probe_TargetItCannotUse_ExitsTwo_SayingWhy()
    {
        Assert.Equal(2, SampleBackend.Program.Main(["--probe", "/health"]));
        Assert.Equal(2, Program.Main(["--probe", "ftp://127.0.0.1/healthz"]));
        Assert.Contains("'ftp://127.0.0.1/healthz' is not an absolute http:// URL", _output.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BalancerProbe_ManagementHealthz_ZeroWhileRunning_OneAfterShutdown()
    {
        var lb = await BalancerFixture.StartAsync();
        var healthz = new Uri(lb.ManagementAddress, "/healthz").ToString();
        int running;
        try
        {
            running = Program.Main(["--probe", healthz]);
        }
        finally
        {
            await lb.DisposeAsync();
        }

        Assert.Equal(0, running);
        Assert.Equal(1, Program.Main(["--probe", healthz]));
    }

    public void Dispose()
    {
        Console.SetOut(_out);
        Console.SetError(_error);
    }
}
