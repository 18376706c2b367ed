using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Bench.Metrics;

namespace Bench.Processes;

/// <summary>A proxy (or a backend reached directly) that load is sent to.</summary>
internal sealed record Target(string Name, Uri Url, Process? Process)
{
    public int Pid => Process?.Id ?? throw new InvalidOperationException($"{Name} is not a process the harness started.");
}

/// <summary>A balancer started by the harness, with what it takes to change it while it runs.</summary>
internal sealed record RunningBalancer(Target Target, string ConfigPath, int Port, int ManagementPort)
{
    public Uri Management => new($"http://127.0.0.1:{ManagementPort}/");

    /// <summary>
    /// One scrape of the balancer's <c>/metrics</c>: the values of <paramref name="series"/>, whose only label is
    /// <paramref name="label"/>, by that label's value.
    /// </summary>
    public async Task<Dictionary<string, double>> CountersAsync(string series, string label)
    {
        using var http = new HttpClient { BaseAddress = Management, Timeout = TimeSpan.FromSeconds(5) };
        return PrometheusText.Parse(await http.GetStringAsync("/metrics"))
            .Where(s => s.Name == series && s.Labels.Count == 1 && s.Labels.ContainsKey(label))
            .ToDictionary(s => s.Labels[label], s => s.Value);
    }
}

/// <summary>
/// The bench's loopback lab: the three sample backends for the whole session, and the proxies started
/// in front of them on demand, each on its CPU set.
/// </summary>
internal sealed class Lab : IDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The runtime environment the deployment files start the balancer with (deploy/systemd/balancer.service, the
    /// Dockerfile, run.sh), given to bare YARP too so the two differ in features only.
    /// </summary>
    private static readonly string[] RuntimeSettings = ["DOTNET_TC_CallCountingDelayMs=0"];

    /// <summary>
    /// More environment for the balancer's process alone, from <c>BENCH_BALANCER_ENV</c> ("NAME=VALUE ..."): a diagnosis
    /// run's runtime settings (an EventPipe trace of what the JIT compiled, see bench/PauseWatch), which the backends, bare
    /// YARP and the harness must not get.
    /// </summary>
    private static readonly string[] BalancerSettings =
        Environment.GetEnvironmentVariable("BENCH_BALANCER_ENV")?.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) ?? [];
    private readonly Options _options;
    private readonly ProcessGroup _processes;
    private readonly HttpClient _http;
    private readonly Dictionary<string, Process> _backendProcesses = [];
    private int _configs;
    private string? _unpinned;
    private TlsFiles? _tls;
    private byte[]? _tlsCertificate;

    public Lab(Options options, string directory)
    {
        _options = options;
        Directory = directory;
        System.IO.Directory.CreateDirectory(directory);
        _processes = new ProcessGroup(directory, options.PidFile);
        _http = new HttpClient(LoadClientHandler(this)) { Timeout = TimeSpan.FromSeconds(5) };
    }

    public string Directory { get; }

    public IReadOnlyList<Backend> Backends { get; private set; } = [];

    public Options Options => _options;

    /// <summary>The CPUs proxies are started on: the options' proxy set, or every CPU while <see cref="Unpinned"/>.</summary>
    public string ProxyCpus => _unpinned ?? _options.ProxyCpus;

    /// <summary>The CPUs wrk runs on: the harness's own (the load set), or every CPU while <see cref="Unpinned"/>.</summary>
    public string? LoadCpus => _unpinned;

    /// <summary>
    /// Until disposed, every process shares every CPU: proxies started meanwhile get all of them (NGINX workers and
    /// HAProxy threads as many), wrk runs on all of them, and the backends are moved there from their own set
    /// (and back afterwards), as on a machine where nothing is pinned.
    /// </summary>
    public IDisposable Unpinned()
    {
        var all = $"0-{File.ReadLines("/proc/cpuinfo").Count(l => l.StartsWith("processor", StringComparison.Ordinal)) - 1}";
        Repin(all);
        _unpinned = all;
        return new Restore(() =>
        {
            _unpinned = null;
            Repin(_options.BackendCpus);
        });
    }

    private void Repin(string cpus)
    {
        foreach (var process in _backendProcesses.Values)
        {
            // -a: every thread of the process, not only its main one.
            Command.Run("taskset", "-a", "-p", "-c", cpus, process.Id.ToString(CultureInfo.InvariantCulture));
        }
    }

    private sealed class Restore(Action restore) : IDisposable
    {
        public void Dispose() => restore();
    }

    public async Task StartBackendsAsync()
    {
        var backends = new List<Backend>();
        foreach (var name in new[] { "A", "B", "C" })
        {
            var backend = new Backend(name, FreePort(), FreePort());
            StartBackend(backend);
            backends.Add(backend);
        }

        foreach (var backend in backends)
        {
            await WaitReadyAsync("backend " + backend.Name, new Uri(backend.Url, "/health"));
        }

        Backends = backends;
    }

    /// <summary>
    /// Stops a backend as a service manager restarts it (SIGTERM: it finishes what it is serving), and
    /// starts it again on the same port. Returns when it answers its health check again.
    /// </summary>
    public async Task RestartBackendAsync(string name)
    {
        var backend = Backends.Single(b => b.Name == name);
        var process = _backendProcesses[name];
        await Task.Run(() => _processes.Stop(process, forget: true));
        StartBackend(backend);
        await WaitReadyAsync("backend " + name, new Uri(backend.Url, "/health"));
    }

    /// <summary>
    /// The balancer with all its features, as an operator runs it: <c>dotnet Balancer.dll --config FILE</c>,
    /// plus <paramref name="settings"/> as <c>--Key value</c> arguments (the ASP.NET way, which wins over the file).
    /// </summary>
    public async Task<Target> StartBalancerAsync(string name, string policy, params string[] settings) =>
        (await StartRunningBalancerAsync(name, policy, settings)).Target;

    /// <summary>
    /// The balancer's Native AOT executable (<see cref="Options.AotExecutable"/>) on the same config and settings as
    /// <see cref="StartBalancerAsync"/>.
    /// </summary>
    public async Task<Target> StartAotBalancerAsync(string name, string policy) =>
        (await StartBalancerProcessAsync(name, policy, tls: null, [], command: [_options.AotExecutable ?? throw new InvalidOperationException("No --aot-executable given.")])).Target;

    /// <summary>As <see cref="StartBalancerAsync"/>, keeping its config file and ports for changes while it runs.</summary>
    public Task<RunningBalancer> StartRunningBalancerAsync(string name, string policy, params string[] settings) =>
        StartBalancerProcessAsync(name, policy, tls: null, settings);

    /// <summary>
    /// The self-signed certificate the TLS race serves from every proxy, made once per session by the script
    /// the deployments use (deploy/tls/self-signed-cert.sh: EC P-256, for localhost and 127.0.0.1).
    /// </summary>
    public async Task<TlsFiles> CertificateAsync()
    {
        if (_tls is not null)
        {
            return _tls;
        }

        var directory = Path.Combine(Directory, "tls");
        var script = Path.GetFullPath(Path.Combine(_options.Repository, "deploy", "tls", "self-signed-cert.sh"));
        var (exit, output, error) = await Command.RunAsync("bash", [script, directory, "localhost", "127.0.0.1"]);
        if (exit != 0)
        {
            throw new InvalidOperationException($"{script} exited with {exit}: {error}{output}");
        }

        var files = TlsFiles.Of(directory);
        using (var loaded = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(files.CertificatePath))
        {
            _tlsCertificate = loaded.RawData;
        }

        return _tls = files;
    }

    /// <summary>The balancer as <see cref="StartBalancerAsync"/> starts it (RoundRobin), its proxy listener <c>https://</c> with the session's certificate.</summary>
    public async Task<Target> StartHttpsBalancerAsync(string name) =>
        (await StartBalancerProcessAsync(name, "RoundRobin", await CertificateAsync(), [])).Target;

    /// <summary>Plain YARP; <paramref name="runtimeDefaults"/> leaves out the two runtime settings it shares with the balancer.</summary>
    public async Task<Target> StartBareYarpAsync(string name, bool runtimeDefaults = false)
    {
        var port = FreePort();
        var config = WriteConfig(name + ".json", ProxyConfigs.Balancer(port, FreePort(), "RoundRobin", Backends));
        string[] args = runtimeDefaults ? [Dll("bench/BareYarp", "BareYarp"), "--config", config, "--runtime-defaults"] : [Dll("bench/BareYarp", "BareYarp"), "--config", config];
        var process = _processes.Start(name, ProxyCpus, "env", [.. runtimeDefaults ? [] : RuntimeSettings, "dotnet", .. args]);
        return await ReadyAsync(name, port, process);
    }

    /// <param name="tls">Given: TLS with HTTP/2 by ALPN on the listener.</param>
    public async Task<Target> StartNginxAsync(string name, TlsFiles? tls = null)
    {
        var port = FreePort();
        var directory = Path.Combine(Directory, name);
        foreach (var temp in new[] { "client_body", "proxy", "fastcgi", "uwsgi", "scgi" })
        {
            System.IO.Directory.CreateDirectory(Path.Combine(directory, temp + "_temp"));
        }

        var config = WriteConfig(name + ".conf", ProxyConfigs.Nginx(port, Backends, CpuList.Count(ProxyCpus), directory, tls, NginxHasHttp2Directive()));
        var process = _processes.Start(name, ProxyCpus, "nginx", ["-p", directory, "-e", Path.Combine(directory, "nginx-error.log"), "-c", config, "-g", "daemon off; master_process on;"]);
        return await ReadyAsync(name, port, process, tls is null ? "http" : "https");
    }

    /// <param name="tls">Given: TLS with HTTP/2 and HTTP/1.1 by ALPN on the frontend.</param>
    public async Task<Target> StartHaproxyAsync(string name, TlsFiles? tls = null)
    {
        var port = FreePort();
        var config = WriteConfig(name + ".cfg", ProxyConfigs.Haproxy(port, Backends, CpuList.Count(ProxyCpus), tls));
        var process = _processes.Start(name, ProxyCpus, "haproxy", ["-db", "-f", config]);
        return await ReadyAsync(name, port, process, tls is null ? "http" : "https");
    }

    /// <summary>Starts wrk, tracked by PID like every other process of the session.</summary>
    public Task<Load.WrkResult> WrkAsync(Uri url, int connections, TimeSpan duration, IReadOnlyList<string>? headers = null) =>
        Load.Wrk.RunAsync(url, connections, LoadCpus is { } cpus ? CpuList.Count(cpus) : _options.LoadCoreCount, duration, _processes.Track, headers: headers, cpus: LoadCpus);

    /// <summary>bench/PauseWatch on <paramref name="pid"/> for at most <paramref name="longest"/>: its GC pauses, lock waits and thread-pool starvation.</summary>
    public Task<Metrics.RuntimePauseWatch> WatchPausesAsync(int pid, TimeSpan longest) =>
        Metrics.RuntimePauseWatch.StartAsync(_options.Repository, _options.BuildConfiguration, pid, longest, LoadCpus, _processes.Track);

    /// <summary>Starts h2load (HTTP/2, <paramref name="streams"/> concurrent streams per connection), tracked by PID.</summary>
    public Task<Load.WrkResult> H2loadAsync(Uri url, int connections, int streams, TimeSpan duration, TimeSpan warmUp = default) =>
        Load.H2load.RunAsync(url, connections, streams, _options.LoadCoreCount, duration, warmUp, Directory, _processes.Track);

    public void Stop(Target target)
    {
        if (target.Process is not null)
        {
            _processes.Stop(target.Process, forget: true);
        }
    }

    /// <summary>Workload requests each backend has served so far (its own count: GET /admin/stats).</summary>
    public async Task<Dictionary<string, long>> ServedAsync()
    {
        var served = new Dictionary<string, long>();
        foreach (var backend in Backends)
        {
            var stats = JsonNode.Parse(await _http.GetStringAsync(new Uri(backend.AdminUrl, "/admin/stats")))!;
            served[backend.Name] = stats["served"]!.GetValue<long>();
        }

        return served;
    }

    /// <summary>Makes a backend slow (the sample backend's delay setting); 0 makes it fast again.</summary>
    public async Task SetDelayAsync(string backend, int milliseconds)
    {
        var target = Backends.Single(b => b.Name == backend);
        using var response = await _http.PostAsync(new Uri(target.AdminUrl, $"/admin/delay?ms={milliseconds}"), null);
        response.EnsureSuccessStatusCode();
    }

    public void Dispose()
    {
        _processes.Dispose();
        _http.Dispose();
    }

    /// <summary>
    /// As <see cref="StartRunningBalancerAsync(string, string, string[])"/>, with the config edited first (a
    /// cluster of thousands of destinations, other health-check intervals).
    /// </summary>
    public Task<RunningBalancer> StartRunningBalancerAsync(string name, string policy, Action<JsonObject> edit, params string[] settings) =>
        StartBalancerProcessAsync(name, policy, tls: null, settings, edit);

    /// <summary>Plain YARP on the config <paramref name="edit"/> makes of the balancer's (it reads Balancer:Listen and ReverseProxy).</summary>
    public async Task<Target> StartBareYarpAsync(string name, Action<JsonObject> edit)
    {
        var port = FreePort();
        var config = WriteConfig(name + ".json", Edited(ProxyConfigs.Balancer(port, FreePort(), "RoundRobin", Backends), edit));
        var process = _processes.Start(name, ProxyCpus, "env", [.. RuntimeSettings, "dotnet", Dll("bench/BareYarp", "BareYarp"), "--config", config]);
        return await ReadyAsync(name, port, process);
    }

    /// <summary>Writes a config the running balancer reloads (it watches its file).</summary>
    public static void Rewrite(RunningBalancer balancer, Action<JsonObject> edit) =>
        File.WriteAllText(balancer.ConfigPath, Edited(File.ReadAllText(balancer.ConfigPath), edit));

    private static string Edited(string config, Action<JsonObject>? edit)
    {
        if (edit is null)
        {
            return config;
        }

        var tree = JsonNode.Parse(config)!.AsObject();
        edit(tree);
        return tree.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
    }

    /// <param name="command">The executable to run instead of <c>dotnet Balancer.dll</c> (the Native AOT build).</param>
    private async Task<RunningBalancer> StartBalancerProcessAsync(string name, string policy, TlsFiles? tls, string[] settings, Action<JsonObject>? edit = null, string[]? command = null)
    {
        var (port, management) = (FreePort(), FreePort());
        var config = WriteConfig(name + ".json", Edited(ProxyConfigs.Balancer(port, management, policy, Backends, tls), edit));
        command ??= ["dotnet", Dll("src/Balancer", "Balancer")];
        var process = _processes.Start(name, ProxyCpus, "env", [.. RuntimeSettings, .. BalancerSettings, .. command, "--config", config, .. settings]);
        await WaitReadyAsync(name + " management", new Uri($"http://127.0.0.1:{management}/healthz"), process);
        return new RunningBalancer(await ReadyAsync(name, port, process, tls is null ? "http" : "https"), config, port, management);
    }

    private void StartBackend(Backend backend) =>
        _backendProcesses[backend.Name] = _processes.Start("backend-" + backend.Name, _options.BackendCpus, "dotnet",
            [Dll("src/SampleBackend", "SampleBackend"), "--urls", $"http://127.0.0.1:{backend.Port}", "--admin-urls", $"http://127.0.0.1:{backend.AdminPort}", "--name", backend.Name]);

    private async Task<Target> ReadyAsync(string name, int port, Process process, string scheme = "http")
    {
        var url = new Uri($"{scheme}://127.0.0.1:{port}/");
        await WaitReadyAsync(name, url, process);
        return new Target(name, url, process);
    }

    private async Task WaitReadyAsync(string what, Uri url, Process? process = null)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(StartTimeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            if (process is { HasExited: true })
            {
                throw new InvalidOperationException($"{what} exited with {process.ExitCode} before it was ready. Log: {Path.Combine(Directory, "*.log")}");
            }

            try
            {
                using var response = await _http.GetAsync(url);
                if (response.IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }

            if (Stopwatch.GetTimestamp() > deadline)
            {
                throw new TimeoutException($"{what} was not ready at {url} within {StartTimeout.TotalSeconds} s.");
            }

            await Task.Delay(50);
        }
    }

    private string WriteConfig(string fileName, string text)
    {
        var path = Path.Combine(Directory, $"{++_configs:00}-{fileName}");
        File.WriteAllText(path, text);
        return path;
    }

    private string Dll(string project, string assembly)
    {
        var path = Path.GetFullPath(Path.Combine(_options.Repository, project, "bin", _options.BuildConfiguration, "net10.0", assembly + ".dll"));
        return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing; build with 'dotnet build -c {_options.BuildConfiguration}' (bench/run.sh does).", path);
    }

    /// <summary>A port the OS reports free now; the harness starts the proxy on it at once.</summary>
    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>Whether the installed NGINX turns HTTP/2 on with <c>http2 on;</c> (it prints its version on stderr).</summary>
    private static bool NginxHasHttp2Directive()
    {
        var (_, output, error) = Command.Run("nginx", "-v");
        return ProxyConfigs.NginxHasHttp2Directive(output + error);
    }

    /// <summary>The harness's own client (readiness, admin calls): trusts the session's self-signed certificate and nothing else besides the system's roots.</summary>
    private static SocketsHttpHandler LoadClientHandler(Lab lab) => new()
    {
        UseProxy = false,
        PooledConnectionLifetime = TimeSpan.FromSeconds(30),
        SslOptions = new System.Net.Security.SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                errors == System.Net.Security.SslPolicyErrors.None ||
                (lab._tlsCertificate is { } trusted && certificate is not null && certificate.GetRawCertData().AsSpan().SequenceEqual(trusted)),
        },
    };

}
