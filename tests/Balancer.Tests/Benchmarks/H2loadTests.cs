using Bench.Load;

namespace Balancer.Tests.Benchmarks;

[Trait("Category", "Unit")]
public sealed class H2loadTests
{
    // Real h2load 1.52.0 (Debian) output, -D 1 against NGINX over TLS with its upstreams down (every answer 502).
    private const string BadGateway = """
        starting benchmark...
        spawning thread #0: 4 total client(s). Timing-based test with 0s of warm-up time and 1s of main duration for measurements.
        Warm-up started for thread #0.
        progress: 100% of clients started
        Warm-up phase is over for thread #0.
        Main benchmark duration is started for thread #0.
        TLS Protocol: TLSv1.3
        Cipher: TLS_AES_128_GCM_SHA256
        Server Temp Key: X25519 253 bits
        Application protocol: h2
        Main benchmark duration is over for thread #0. Stopping all clients.
        Stopped all clients for thread #0

        finished in 1.01s, 9467.00 req/s, 2.07MB/s
        requests: 9467 total, 9475 started, 9467 done, 0 succeeded, 9467 failed, 0 errored, 0 timeout
        status codes: 0 2xx, 0 3xx, 0 4xx, 9467 5xx
        traffic: 2.07MB (2168139) total, 499.24KB (511218) headers (space savings 45.45%), 1.42MB (1486319) data
                             min         max         mean         sd        +/- sd
        time for request:       63us     57.80ms       600us      2.06ms    94.25%
        time for connect:    13.61ms     28.09ms     24.13ms      7.02ms    75.00%
        time to 1st byte:    36.39ms     37.03ms     36.85ms       310us    75.00%
        req/s           :    2284.58     2437.25     2362.18       62.80    50.00%
        """;

    [Fact]
    public void Parse_SummaryAndRequestLog_GiveRatesCountsAndPercentilesFromTheLog()
    {
        // One hundred completed streams of 1..100 ms, and one failed stream (-1), which has no latency.
        string[] log = [.. Enumerable.Range(1, 100).Select(i => $"1796531445089247\t200\t{i * 1000}"), "1796531445089247\t-1\t5000000"];

        var result = H2load.Parse(BadGateway, log);

        Assert.Equal(9467, result.Requests);
        Assert.Equal(1.01, result.Seconds, 6);
        Assert.Equal(9467, result.RequestsPerSecond);
        Assert.Equal(2.07 * 1024 * 1024, result.TransferBytesPerSecond, 1);
        Assert.Equal(50.5, result.MeanMs, 6);
        Assert.Equal(50.5, result.P50Ms, 6);
        Assert.Equal(99.01, result.P99Ms, 6);
        Assert.Equal(100, result.MaxMs);
        // h2load's "failed" are the 502s here: answers, not transport failures, as wrk would count them.
        Assert.Equal(0, result.SocketErrors);
        Assert.Equal(9467, result.Non2xx);
        Assert.Equal(100, result.FailedPercent);
    }

    [Fact]
    public void Parse_NoCompletedRequest_HasNoLatencies()
    {
        var result = H2load.Parse(BadGateway, ["1796531445089247\t-1\t5000000"]);

        Assert.True(double.IsNaN(result.P99Ms));
        Assert.True(double.IsNaN(result.MeanMs));
    }

    [Fact]
    public void Parse_Http11ByAlpn_IsRefused_NotCountedAsHttp2()
    {
        var error = Assert.Throws<InvalidOperationException>(() => H2load.Parse(BadGateway.Replace("Application protocol: h2", "Application protocol: http/1.1", StringComparison.Ordinal), []));

        Assert.Contains("did not negotiate h2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NotH2loadOutput_SaysSo()
    {
        Assert.Throws<FormatException>(() => H2load.Parse("connect: Connection refused", []));
    }
}
