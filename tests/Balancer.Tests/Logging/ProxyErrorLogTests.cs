using System.Net;
using Balancer.Configuration;
using Balancer.LoadBalancing;
using Balancer.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Tests.Logging;

public sealed class ProxyErrorLogTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FakeLogger<ProxyErrorLog> _logger = new();

    [Fact]
    public void ClientFaults_OneShortLineEach_UpToTheLimit_ThenTheCountOnTheNextWindowsFirstLine()
    {
        var log = Log();
        var requests = ProxyErrorLog.LinesPerWindow + 15;

        for (var i = 0; i < requests; i++)
        {
            log.Record(Request(ForwarderError.RequestBodyClient, new BadHttpRequestException("Bad chunk size data.")));
        }

        var lines = _logger.Collector.GetSnapshot();
        Assert.Equal(ProxyErrorLog.LinesPerWindow, lines.Count);
        Assert.All(lines, line =>
        {
            Assert.Equal(LogLevel.Information, line.Level);
            Assert.Null(line.Exception);
            Assert.Equal("POST /upload from 192.0.2.10 to -: client fault RequestBodyClient: Bad chunk size data. (0 similar lines suppressed before this one)", line.Message);
        });

        _time.Advance(ProxyErrorLog.Window);
        log.Record(Request(ForwarderError.RequestBodyClient, new BadHttpRequestException("Bad chunk size data.")));

        Assert.Equal("15", _logger.LatestRecord.GetStructuredStateValue("Suppressed"));
    }

    [Fact]
    public void DestinationFault_IsAWarning_WithItsOwnBudget()
    {
        var log = Log();
        for (var i = 0; i < ProxyErrorLog.LinesPerWindow; i++)
        {
            log.Record(Request(ForwarderError.RequestBodyClient, new BadHttpRequestException("Bad chunk size data.")));
        }

        log.Record(Request(ForwarderError.Request, new HttpRequestException("Connection refused (127.0.0.1:5001)")));

        Assert.Equal(LogLevel.Warning, _logger.LatestRecord.Level);
        Assert.Contains("Request: Connection refused (127.0.0.1:5001)", _logger.LatestRecord.Message, StringComparison.Ordinal);
        Assert.Null(_logger.LatestRecord.Exception);
    }

    [Fact]
    public void NoError_NothingLogged()
    {
        Log().Record(Request(ForwarderError.None, null));

        Assert.Equal(0, _logger.Collector.Count);
    }

    private ProxyErrorLog Log()
    {
        var options = new ServiceCollection().Configure<BalancerOptions>(_ => { }).BuildServiceProvider().GetRequiredService<IOptionsMonitor<BalancerOptions>>();
        return new ProxyErrorLog(new ClientIpResolver(options), _time, _logger);
    }

    private static DefaultHttpContext Request(ForwarderError error, Exception? exception)
    {
        var context = new DefaultHttpContext();
        context.Features.Set<IForwarderErrorFeature>(new Failure(error, exception));
        context.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.10");
        context.Request.Method = "POST";
        context.Request.Path = "/upload";
        return context;
    }

    private sealed record Failure(ForwarderError Error, Exception? Exception) : IForwarderErrorFeature;
}
