using Bench.Load;

namespace Balancer.Tests.Benchmarks;

[Trait("Category", "Unit")]
public sealed class WrkOutputTests
{
    // Real wrk 4.1.0 (Debian) output, against python3 -m http.server.
    private const string Ok = """
        Running 1s test @ http://127.0.0.1:18765/
          1 threads and 4 connections
          Thread Stats   Avg      Stdev     Max   +/- Stdev
            Latency     1.04ms  658.02us  11.16ms   94.06%
            Req/Sec     3.96k   732.29     4.49k    81.82%
          Latency Distribution
             50%    0.93ms
             75%    1.15ms
             90%    1.43ms
             99%    2.94ms
          4334 requests in 1.10s, 791.64KB read
        Requests/sec:   3941.90
        Transfer/sec:    720.02KB
        """;

    private const string NotFound = """
        Running 1s test @ http://127.0.0.1:18765/missing
          1 threads and 4 connections
          Thread Stats   Avg      Stdev     Max   +/- Stdev
            Latency   787.08us  236.98us   3.78ms   77.66%
            Req/Sec     4.99k   119.67     5.16k    80.00%
          Latency Distribution
             50%  760.00us
             75%    0.90ms
             90%    1.05ms
             99%    1.50ms
          4964 requests in 1.00s, 2.46MB read
          Non-2xx or 3xx responses: 4964
        Requests/sec:   4963.10
        Transfer/sec:      2.46MB
        """;

    [Fact]
    public void Parse_LatencyRun_ReadsEveryFigureInMilliseconds()
    {
        var result = WrkOutput.Parse(Ok);

        Assert.Equal(new WrkResult(
            Requests: 4334, Seconds: 1.1, RequestsPerSecond: 3941.90, TransferBytesPerSecond: 720.02 * 1024,
            MeanMs: 1.04, P50Ms: 0.93, P75Ms: 1.15, P90Ms: 1.43, P99Ms: 2.94, MaxMs: 11.16, SocketErrors: 0, Non2xx: 0), result);
        Assert.Equal(0, result.FailedPercent);
    }

    [Fact]
    public void Parse_MicrosecondsAndNon2xx_ConvertsUnitsAndCountsFailures()
    {
        var result = WrkOutput.Parse(NotFound);

        Assert.Equal(0.78708, result.MeanMs, 10);
        Assert.Equal(0.76, result.P50Ms, 10);
        Assert.Equal(2.46 * 1024 * 1024, result.TransferBytesPerSecond, 6);
        Assert.Equal(4964, result.Non2xx);
        Assert.Equal(100, result.FailedPercent);
    }

    [Fact]
    public void Parse_SocketErrorsAndSecondLatencies_AreSummed()
    {
        var text = Ok.Replace("    99%    2.94ms", "    99%    1.20s", StringComparison.Ordinal)
            .Replace("Requests/sec:", "  Socket errors: connect 1, read 2, write 3, timeout 4\nRequests/sec:", StringComparison.Ordinal);

        var result = WrkOutput.Parse(text);

        Assert.Equal(1200, result.P99Ms, 10);
        Assert.Equal(10, result.SocketErrors);
        Assert.Equal(100.0 * 10 / 4334, result.FailedPercent, 10);
    }

    [Fact]
    public void Parse_WithoutLatencyDistribution_SaysToUseLatencyFlag()
    {
        var text = string.Join('\n', Ok.Split('\n').Where(l => !l.Contains('%', StringComparison.Ordinal) || l.Contains("Stdev", StringComparison.Ordinal) || l.Contains("Latency ", StringComparison.Ordinal) || l.Contains("Req/Sec", StringComparison.Ordinal)));

        var error = Assert.Throws<FormatException>(() => WrkOutput.Parse(text));
        Assert.Contains("--latency", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_NotWrkOutput_Throws()
    {
        Assert.Throws<FormatException>(() => WrkOutput.Parse("unable to connect to 127.0.0.1:1 Connection refused"));
    }
}
