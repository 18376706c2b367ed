using System.Net;
using System.Text.Json.Nodes;
using Balancer.Tests.Deployment;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.HighAvailability;

/// <summary>
/// Two balancers sharing a floating address through real keepalived, configured from the shipped
/// deploy/keepalived files, on a private bridge: backends A and B on one host, lb1 and lb2 each running a
/// balancer and keepalived, and a client host that sends its requests to the floating address.
/// </summary>
public sealed class KeepalivedPair : IAsyncLifetime
{
    public const string Subnet = "10.77.0.";
    public const string FloatingAddress = Subnet + "100";
    public static readonly string[] Balancers = ["lb1", "lb2"];
    private const string BackendHost = Subnet + "10";
    private readonly Dictionary<string, LabProcess> _balancers = [];
    private readonly Dictionary<string, NamespaceSockets> _sockets = [];
    private readonly Dictionary<string, HttpClient> _management = [];
    private readonly List<LabProcess> _keepalived = [];
    private const UnixFileMode Executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
    private string _directory = null!;
    private DateTime? _bothSince;

    internal NetworkLab Lab { get; private set; } = null!;

    internal HttpClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        _directory = Directory.CreateTempSubdirectory("keepalived-pair-").FullName;
        Lab = NetworkLab.Create();
        try
        {
            Start();
            await Task.Yield();
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync()
    {
        Client?.Dispose();
        foreach (var client in _management.Values)
        {
            client.Dispose();
        }

        foreach (var sockets in _sockets.Values)
        {
            sockets.Dispose();
        }

        if (Lab is not null)
        {
            await Lab.DisposeAsync();
        }

        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>
    /// The balancer host that holds the floating address now, or null when neither does or the address is
    /// between them. The two hosts are read one after the other, so a move between the reads shows both
    /// holding it for a moment; both holding it for seconds is a split brain, and fails the test.
    /// </summary>
    internal string? Holder()
    {
        var holders = Balancers.Where(lb => Lab.Run(Lab.NamespaceOf(lb), "ip", "-4", "-o", "addr", "show", "dev", "eth0").Contains(FloatingAddress + "/", StringComparison.Ordinal)).ToList();
        if (holders.Count <= 1)
        {
            _bothSince = null;
            return holders.SingleOrDefault();
        }

        _bothSince ??= DateTime.UtcNow;
        Assert.True(DateTime.UtcNow - _bothSince < TimeSpan.FromSeconds(3), $"Both balancers hold {FloatingAddress} for 3 s:{Environment.NewLine}{Transitions()}");
        return null;
    }

    internal static string Peer(string lb) => Balancers.Single(b => b != lb);

    internal LabProcess Balancer(string lb) => _balancers[lb];

    internal async Task<HttpStatusCode?> ReadyzAsync(string lb)
    {
        try
        {
            using var response = await _management[lb].GetAsync("/readyz");
            return response.StatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return null;
        }
    }

    /// <summary>Both balancers ready, one of them holding the address with the other a backup, requests served.</summary>
    internal async Task<string> SteadyAsync(FailoverLoad load)
    {
        foreach (var lb in Balancers.Where(lb => _balancers[lb].HasExited))
        {
            await _balancers[lb].DisposeAsync();
            StartBalancer(lb);
        }

        // Settled: a balancer's first health probes can time out on a busy machine, and a pair that is still
        // moving the address on its own would blur what the test measures.
        string? holder = null;
        await Poll.UntilAsync(
            async () =>
            {
                if (Balancers.Any(lb => DateTime.UtcNow - File.GetLastWriteTimeUtc(NotifyLog(lb)) < TimeSpan.FromSeconds(5)))
                {
                    return false;
                }

                foreach (var lb in Balancers)
                {
                    if (await ReadyzAsync(lb) != HttpStatusCode.OK)
                    {
                        return false;
                    }
                }

                holder = Holder();
                return holder is not null && LastState(Peer(holder)) == "BACKUP";
            },
            // Two balancers starting on a machine with a load average of 80 have taken over a minute to be ready.
            TimeSpan.FromSeconds(180),
            $"both balancers ready, one holding {FloatingAddress} and the other BACKUP, for 5 s:{Environment.NewLine}{Transitions()}");
        // Both warm: the backup has served before it takes over, as a balancer in service has.
        for (var i = 0; i < Balancers.Length; i++)
        {
            for (var request = 0; request < 50; request++)
            {
                using var response = await Client.GetAsync(new Uri($"http://{Subnet}{11 + i}:8080/"));
                response.EnsureSuccessStatusCode();
            }
        }

        var from = load.Now;
        await Poll.UntilAsync(() => load.SucceededSince(from) >= 20, TimeSpan.FromSeconds(30), "requests through the floating address");
        return holder!;
    }

    /// <summary>Starts (or starts again) the balancer on <paramref name="lb"/>.</summary>
    internal void StartBalancer(string lb)
    {
        var config = Path.Combine(_directory, lb + ".json");
        if (!File.Exists(config))
        {
            File.WriteAllText(config, BalancerConfig(TrackFile(lb)).ToJsonString());
        }

        _balancers[lb] = Lab.Start(Lab.NamespaceOf(lb), [.. BalancerProcess.Command, "--config", config]);
    }

    /// <summary>Every VRRP state change both notify scripts logged, for failure messages.</summary>
    internal string Transitions() => string.Join(Environment.NewLine, Balancers.Select(lb => $"{lb}: {Read(NotifyLog(lb))}"));

    /// <summary>The last state the notify script logged for <paramref name="lb"/>.</summary>
    internal string? LastState(string lb) =>
        Read(NotifyLog(lb)).Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault()?.Split(" -> ")[1].Split(' ')[0];

    private static string Read(string path) => File.Exists(path) ? File.ReadAllText(path) : "";

    private string NotifyLog(string lb) => Path.Combine(_directory, lb + "-vrrp.log");

    private string TrackFile(string lb) => Path.Combine(_directory, lb + "-leaving");

    /// <summary>When the balancer on <paramref name="lb"/> told keepalived to give the address away, or null if it has not.</summary>
    internal DateTime? ReleasedAt(string lb) =>
        File.Exists(TrackFile(lb)) && File.ReadAllText(TrackFile(lb)).Trim() == "1" ? File.GetLastWriteTimeUtc(TrackFile(lb)) : null;

    private void Start()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("keepalived and network namespaces are Linux only.");
        }

        var backends = Lab.AddHost("be", BackendHost + "/24");
        foreach (var (name, port) in new[] { ("A", 5001), ("B", 5002) })
        {
            Lab.Start(backends, ["dotnet", SampleBackendDll(), "--urls", $"http://{BackendHost}:{port}", "--name", name]);
        }

        // Installed as an operator would: root-owned scripts keepalived accepts under enable_script_security.
        var scripts = Directory.CreateDirectory(Path.Combine(_directory, "keepalived"));
        File.SetUnixFileMode(_directory, Executable);
        File.SetUnixFileMode(scripts.FullName, Executable);
        foreach (var script in new[] { "check_balancer.sh", "notify.sh" })
        {
            File.Copy(Repo.PathOf("deploy/keepalived/" + script), Path.Combine(scripts.FullName, script));
            File.SetUnixFileMode(Path.Combine(scripts.FullName, script), Executable);
        }

        for (var i = 0; i < Balancers.Length; i++)
        {
            var lb = Balancers[i];
            var ns = Lab.AddHost(lb, $"{Subnet}{11 + i}/24");
            _sockets[lb] = new NamespaceSockets(ns);
            _management[lb] = _sockets[lb].CreateClient(new Uri("http://127.0.0.1:9091"), TimeSpan.FromSeconds(2));
            StartBalancer(lb);

            var conf = Path.Combine(_directory, lb + ".conf");
            var rendered = Repo.Run(Repo.PathOf("deploy/keepalived/render.sh"), [], env: new Dictionary<string, string?>
            {
                ["LB_NAME"] = lb,
                ["LB_INTERFACE"] = "eth0",
                ["LB_VIP"] = FloatingAddress + "/24",
                ["LB_PRIORITY"] = i == 0 ? "250" : "240",
                ["LB_SCRIPTS"] = scripts.FullName,
                ["LB_SCRIPT_USER"] = "root",
                ["LB_NOTIFY_LOG"] = NotifyLog(lb),
                ["LB_TRACK_FILE"] = TrackFile(lb),
            });
            Assert.True(rendered.ExitCode == 0, rendered.ToString());
            File.WriteAllText(conf, rendered.Stdout);
            _keepalived.Add(Lab.Start(ns, ["keepalived", "--dont-fork", "--log-console", "--log-detail", "--use-file", conf,
                "--pid", Path.Combine(_directory, lb + ".pid"), "--vrrp_pid", Path.Combine(_directory, lb + "-vrrp.pid"), "--checkers_pid", Path.Combine(_directory, lb + "-checkers.pid")]));
        }

        var client = Lab.AddHost("client", Subnet + "20/24");
        _sockets["client"] = new NamespaceSockets(client);
        // Long enough for one SYN retransmission (1 s): a connection attempt while the address is between holders
        // is late, not failed, as for any real client.
        Client = _sockets["client"].CreateClient(new Uri($"http://{FloatingAddress}:8080"), TimeSpan.FromSeconds(5));
    }

    private static JsonObject BalancerConfig(string trackFile) => new()
    {
        ["Balancer"] = new JsonObject
        {
            ["Listen"] = "http://0.0.0.0:8080",
            ["Management"] = new JsonObject { ["Listen"] = "http://127.0.0.1:9091" },
            ["Shutdown"] = new JsonObject { ["FloatingAddress"] = true, ["TrackFile"] = trackFile },
        },
        ["ReverseProxy"] = new JsonObject
        {
            ["Routes"] = new JsonObject { ["all"] = new JsonObject { ["ClusterId"] = "backends", ["Match"] = new JsonObject { ["Path"] = "{**catch-all}" } } },
            ["Clusters"] = new JsonObject
            {
                ["backends"] = new JsonObject
                {
                    ["LoadBalancingPolicy"] = "RoundRobin",
                    ["HealthCheck"] = new JsonObject
                    {
                        ["Active"] = new JsonObject { ["Enabled"] = true, ["Interval"] = "00:00:02", ["Timeout"] = "00:00:02", ["Policy"] = "ConsecutiveFailures", ["Path"] = "/health" },
                    },
                    ["Destinations"] = new JsonObject
                    {
                        ["A"] = new JsonObject { ["Address"] = $"http://{BackendHost}:5001/" },
                        ["B"] = new JsonObject { ["Address"] = $"http://{BackendHost}:5002/" },
                    },
                },
            },
        },
    };

    internal static string SampleBackendDll()
    {
        var path = BalancerProcess.Dll.Replace("src/Balancer/bin", "src/SampleBackend/bin", StringComparison.Ordinal).Replace("Balancer.dll", "SampleBackend.dll", StringComparison.Ordinal);
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing; build the solution first.", path);
    }
}
