using Balancer.Logging;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.Extensions.Logging.Testing;

namespace Balancer.Tests.Logging;

/// <summary>A client sending broken bodies gets its 400s, costs a bounded log, and harms no destination.</summary>
[Collection(FunctionalCollection.Name)]
public sealed class BadRequestLogTests
{
    [Fact]
    public async Task TwentyBrokenChunkedBodies_Get400_TenShortLines_NoStackTrace_NoDestinationDown()
    {
        await using var lb = await BalancerFixture.StartAsync(configure: b => b.Logging.AddFakeLogging());

        for (var i = 0; i < 20; i++)
        {
            var answer = await RawHttp.ExchangeAsync(lb.ProxyAddress,
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n");
            Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", answer, StringComparison.Ordinal);
        }

        var records = lb.App.Services.GetFakeLogCollector().GetSnapshot();
        var lines = records.Where(r => r.Id.Id == 1301).ToList();
        Assert.Equal(ProxyErrorLog.LinesPerWindow, lines.Count);
        Assert.All(lines, l => Assert.Contains("client fault RequestBodyClient: Bad chunk size data.", l.Message, StringComparison.Ordinal));
        Assert.DoesNotContain(records, r => r.Exception is not null);
        Assert.DoesNotContain(records, r => r.Level >= LogLevel.Warning);
        // A client's broken body says nothing about the destination: no circuit opens, nothing goes Down.
        var status = (await lb.StatusAsync()).ToJsonString();
        Assert.DoesNotContain("\"Down\"", status, StringComparison.Ordinal);
        var counts = await lb.CountsAsync(999);
        Assert.Equal([333, 333, 333], counts);
    }
}
