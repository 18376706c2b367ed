using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Bench.Stats;

namespace Bench.Load;

/// <summary>How one run of <see cref="LoadClient"/> sends its requests.</summary>
/// <param name="Requests">Stop after this many requests (the papers' "1000 requests").</param>
/// <param name="Concurrency">Requests in flight at most (closed loop: each worker sends the next when its last is answered).</param>
/// <param name="Duration">Stop sending after this long, if it comes before <paramref name="Requests"/>.</param>
/// <param name="RatePerSecond">When set, request i is sent no earlier than i/rate seconds after the start (moderate, paced load).</param>
internal sealed record LoadPlan(string Path, int Requests, int Concurrency, TimeSpan? Duration = null, double? RatePerSecond = null);

/// <summary>What one run measured.</summary>
internal sealed record LoadResult(
    int Sent,
    int Failed,
    double Seconds,
    long ResponseBytes,
    IReadOnlyDictionary<string, int> ByBackend,
    LatencySummary? Latency)
{
    public double RequestsPerSecond => (Sent - Failed) / Seconds;

    /// <summary>Response bodies received, in megabits per second (the QoS paper's throughput, minus headers).</summary>
    public double Mbps => ResponseBytes * 8 / Seconds / 1_000_000;

    public double FailedPercent => Sent == 0 ? 100 : 100.0 * Failed / Sent;
}

/// <summary>
/// The harness's own HTTP/1.1 load client, for what wrk cannot give: every request's latency in send
/// order (jitter, percentiles), the <c>X-Backend</c> each answer came from, and many client addresses
/// (connections bound to 127.0.3.x) so IpHash sees many clients. Bounded in count and in time.
/// </summary>
internal sealed class LoadClient : IDisposable
{
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromSeconds(30);
    private readonly HttpMessageInvoker[] _clients;
    private readonly Uri _target;

    /// <param name="sources">Client addresses to spread requests over (127.0.3.1 up); 0 uses the OS's choice.</param>
    public LoadClient(Uri target, int sources = 0)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(sources, 250);
        _target = target;
        _clients = sources == 0
            ? [new HttpMessageInvoker(Handler(null))]
            : [.. Enumerable.Range(1, sources).Select(i => new HttpMessageInvoker(Handler(IPAddress.Parse($"127.0.3.{i}"))))];
    }

    public async Task<LoadResult> RunAsync(LoadPlan plan, CancellationToken cancellationToken = default)
    {
        var latencies = new double[plan.Requests];
        var backends = new string?[plan.Requests];
        var failed = new bool[plan.Requests];
        var done = new bool[plan.Requests];
        long bytes = 0;
        var next = -1;
        var started = Stopwatch.GetTimestamp();
        var url = new Uri(_target, plan.Path);
        var deadline = plan.Duration is { } duration ? started + (long)(duration.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;

        async Task WorkerAsync()
        {
            var buffer = new byte[16 * 1024];
            while (true)
            {
                var i = Interlocked.Increment(ref next);
                if (i >= plan.Requests || Stopwatch.GetTimestamp() >= deadline || cancellationToken.IsCancellationRequested)
                {
                    return;
                }

                if (plan.RatePerSecond is { } rate)
                {
                    var due = started + (long)(i / rate * Stopwatch.Frequency);
                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                    if (wait > TimeSpan.Zero)
                    {
                        // Pacing the sender, not waiting for a condition: this is the load's schedule.
                        await Task.Delay(wait, cancellationToken);
                    }
                }

                var client = _clients[i % _clients.Length];
                var sent = Stopwatch.GetTimestamp();
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, url);
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(RequestTimeout);
                    using var response = await client.SendAsync(request, timeout.Token);
                    await using var body = await response.Content.ReadAsStreamAsync(timeout.Token);
                    int read;
                    long size = 0;
                    while ((read = await body.ReadAsync(buffer, timeout.Token)) > 0)
                    {
                        size += read;
                    }

                    Interlocked.Add(ref bytes, size);
                    failed[i] = !response.IsSuccessStatusCode;
                    backends[i] = response.Headers.TryGetValues("X-Backend", out var names) ? names.FirstOrDefault() : null;
                }
                catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
                {
                    failed[i] = true;
                }

                latencies[i] = Stopwatch.GetElapsedTime(sent).TotalMilliseconds;
                done[i] = true;
            }
        }

        var workers = new Task[Math.Min(plan.Concurrency, plan.Requests)];
        for (var w = 0; w < workers.Length; w++)
        {
            workers[w] = Task.Run(WorkerAsync, CancellationToken.None);
        }

        await Task.WhenAll(workers);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var claimed = Math.Min(next + 1, plan.Requests);

        // A worker that claimed an index after the deadline sent nothing: keep only what was sent, in order.
        var count = 0;
        var byBackend = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var failures = 0;
        for (var i = 0; i < claimed; i++)
        {
            if (!done[i])
            {
                continue;
            }

            latencies[count++] = latencies[i];
            if (failed[i])
            {
                failures++;
            }
            else if (backends[i] is { } name)
            {
                byBackend[name] = byBackend.GetValueOrDefault(name) + 1;
            }
        }

        return new LoadResult(count, failures, seconds, bytes, byBackend, count == 0 ? null : LatencyStats.Summarize(latencies.AsSpan(0, count)));
    }

    public void Dispose()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }
    }

    internal static SocketsHttpHandler Handler(IPAddress? source) => new()
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                if (source is not null)
                {
                    socket.Bind(new IPEndPoint(source, 0));
                }

                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };
}
