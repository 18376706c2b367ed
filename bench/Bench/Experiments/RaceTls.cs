using Bench.Load;
using Bench.Processes;
using Bench.Reporting;

namespace Bench.Experiments;

/// <summary>
/// The race over TLS: the balancer against NGINX and HAProxy, each terminating TLS with the same self-signed
/// certificate in front of the same three backends, driven three ways: HTTPS with HTTP/1.1 (wrk), HTTPS with
/// HTTP/2 (h2load, ten streams per connection), and a new TLS connection per request (wrk with
/// <c>Connection: close</c>: the handshake rate). Runs alternated in one session; medians.
/// </summary>
internal static class RaceTls
{
    public const int Connections = 64;
    public const int Streams = 10;

    /// <summary>What each mode is called in the report, and what drives it.</summary>
    public static readonly (string Name, string Description)[] Modes =
    [
        ("https-h1", $"HTTPS, HTTP/1.1: wrk -c{Connections}, keep-alive"),
        ("https-h2", $"HTTPS, HTTP/2 by ALPN: h2load -c{Connections} -m{Streams}"),
        ("handshake", $"a new TLS connection per request: wrk -c{Connections} -H 'Connection: close'"),
    ];

    public static async Task RunAsync(Lab lab, Report report)
    {
        var options = lab.Options;
        var proxies = new List<Target>();
        var runs = new List<ProxyRun>();
        IReadOnlyList<WarmUp> warmUps;
        try
        {
            var tls = await lab.CertificateAsync();
            proxies.Add(await lab.StartHttpsBalancerAsync("balancer"));
            proxies.Add(await lab.StartNginxAsync("nginx", tls));
            proxies.Add(await lab.StartHaproxyAsync("haproxy", tls));
            // The usual warm-up drives HTTPS with HTTP/1.1; the HTTP/2 and handshake paths are other code
            // (the balancer's JIT compiles them only when they run), so each gets a round of its own too.
            warmUps = await Measured.WarmUpAsync(lab, proxies);
            foreach (var proxy in proxies)
            {
                foreach (var (mode, _) in Modes.Skip(1))
                {
                    await LoadAsync(lab, proxy, mode, options.SettleRoundDuration, WarmUpConnect);
                }
            }

            foreach (var (mode, _) in Modes)
            {
                for (var run = 1; run <= options.RepeatedRuns; run++)
                {
                    foreach (var proxy in proxies)
                    {
                        runs.Add(await Measured.MeasureAsync(lab, proxy, Label(proxy.Name, mode), Connections, run, async () =>
                        {
                            var result = await LoadAsync(lab, proxy, mode, options.RunDuration);
                            return result.Requests > 0 ? result : throw new InvalidOperationException($"{Label(proxy.Name, mode)} run {run}: no request completed in {options.RunDuration.TotalSeconds:0} s.");
                        }));
                    }
                }
            }
        }
        finally
        {
            proxies.ForEach(lab.Stop);
        }

        var names = proxies.Select(p => p.Name).ToArray();
        var modes = Modes.Select(m => m.Name).ToArray();
        var summaries = runs.GroupBy(r => r.Proxy).ToDictionary(g => g.Key, g => ProxySummary.Of([.. g]));
        ProxySummary Of(string proxy, string mode) => summaries[Label(proxy, mode)];

        var section = report.Add("race-tls: balancer vs NGINX vs HAProxy over TLS")
            .Text($"Each proxy terminates TLS on loopback with the same self-signed certificate (EC P-256, made by `deploy/tls/self-signed-cert.sh`), " +
                  "TLS 1.2 and 1.3 only, HTTP/2 and HTTP/1.1 by ALPN, and proxies `GET /` over HTTP/1.1 keep-alive to the same three backends. " +
                  "Modes: " + string.Join("; ", Modes.Select(m => $"`{m.Name}`: {m.Description}")) + ". " +
                  $"{options.RunDuration.TotalSeconds:0} s per run, {options.RepeatedRuns} run(s) per proxy and mode, run order balancer, nginx, haproxy, balancer, ...; medians over runs. " +
                  "The balancer runs RoundRobin with active health checks and its metrics (`https://` listener, `Balancer:Tls:CertificatePath`/`KeyPath`); " +
                  $"NGINX {options.ProxyCoreCount} worker(s), `ssl_protocols TLSv1.2 TLSv1.3`, HTTP/2 on, `keepalive {ProxyConfigs.NginxUpstreamKeepalive}` upstream; " +
                  $"HAProxy `nbthread {options.ProxyCoreCount}`, `bind ... ssl alpn h2,http/1.1 ssl-min-ver TLSv1.2`, http-keep-alive and health checks every 2 s. " +
                  "Neither wrk nor h2load resumes TLS sessions, so in `handshake` every request pays a full handshake (ECDHE and an ECDSA signature); " +
                  "its RPS is the handshake rate, and its latencies, as wrk measures them, start once the connection is up. " +
                  "HTTP/2 latencies come from h2load's per-request log. CPU is user+system seconds of the proxy's processes per 100,000 requests. " +
                  WarmUp.Describe(warmUps, options) + " Then one round of each other mode per proxy.");
        var table = new Table(["proxy, mode", "RPS", "p50 (ms)", "p99 (ms)", "CPU s / 100k req", "peak RSS (MB)", "failed (%)"]);
        foreach (var mode in modes)
        {
            foreach (var name in names)
            {
                var s = Of(name, mode);
                table.Row(Label(name, mode), s.Rps, s.P50, s.P99, s.CpuPer100k, s.PeakRssMb, s.FailedPercent);
            }
        }

        section.Table(table);
        var ratios = new Table(["balancer vs", .. modes.Select(m => $"RPS ratio {m}"), .. modes.Select(m => $"p99 ratio {m}"), .. modes.Select(m => $"CPU/req ratio {m}")]);
        foreach (var other in names.Skip(1))
        {
            ratios.Row(other,
                [.. modes.Select(m => Of("balancer", m).Rps / Of(other, m).Rps),
                 .. modes.Select(m => Of("balancer", m).P99 / Of(other, m).P99),
                 .. modes.Select(m => Of("balancer", m).CpuPer100k / Of(other, m).CpuPer100k)]);
        }

        section.Text("Ratios: the balancer's median divided by the other proxy's (RPS above 1 is better, p99 and CPU below 1 are better).")
            .Table(ratios)
            .Chart("race-tls-rps.svg", "median RPS per proxy and TLS mode", SvgChart.Bars("Median requests per second over TLS", "requests/s", modes,
                [.. names.Select(n => new Series(n, [.. modes.Select(m => Of(n, m).Rps)]))]))
            .Chart("race-tls-cpu.svg", "proxy CPU seconds per 100k requests per TLS mode", SvgChart.Bars("Proxy CPU per 100k requests over TLS", "CPU seconds", modes,
                [.. names.Select(n => new Series(n, [.. modes.Select(m => Of(n, m).CpuPer100k)]))]));

        Measured.AddRuns(section, "Every run, in the order run (the wrk CPU column is the load generator's share of its CPUs, h2load's in `https-h2` runs; near 100% the load generator, not the proxy, was the limit):", runs);

        var h2 = Of("balancer", "https-h2").Rps / Of("nginx", "https-h2").Rps;
        var handshakes = Of("balancer", "handshake").Rps / Of("nginx", "handshake").Rps;
        report.Targets.Add(new TargetCheck("race-tls", $"balancer RPS >= 0.9x NGINX over HTTP/2 and TLS (h2load -c{Connections} -m{Streams})", Format.Ratio(h2), h2 >= 0.9));
        report.Targets.Add(new TargetCheck("race-tls", "balancer TLS handshake rate (a new connection per request) >= 0.8x NGINX's", Format.Ratio(handshakes), handshakes >= 0.8));
    }

    private static string Label(string proxy, string mode) => $"{proxy} {mode}";

    /// <summary>
    /// h2load's own warm-up in the warm-up round: a proxy that has not served HTTP/2 yet can take over a second
    /// to answer 64 new connections' first streams, which a short round would then count as no requests at all.
    /// </summary>
    private static readonly TimeSpan WarmUpConnect = TimeSpan.FromSeconds(1);

    private static Task<WrkResult> LoadAsync(Lab lab, Target proxy, string mode, TimeSpan duration, TimeSpan warmUp = default) => mode switch
    {
        "https-h1" => lab.WrkAsync(proxy.Url, Connections, duration),
        "https-h2" => lab.H2loadAsync(proxy.Url, Connections, Streams, duration, warmUp),
        "handshake" => lab.WrkAsync(proxy.Url, Connections, duration, ["Connection: close"]),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "Unknown TLS race mode."),
    };
}
