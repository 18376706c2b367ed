using System.Net;
using Balancer.Configuration;
using Balancer.LoadBalancing;
using Balancer.Logging;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy.Forwarder;

namespace Balancer.Tests.Logging;

public sealed class ProxyErrorLogMiddlewareTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly FakeLogger<ProxyErrorLogMiddleware> _logger = new();

    [Fact]
    public async Task ClientFaults_OneShortLineEach_UpToTheLimit_ThenTheCountOnTheNextWindowsFirstLine()
    {
        var middleware = Middleware(ForwarderError.RequestBodyClient, new BadHttpRequestException("Bad chunk size data."));
        var requests = ProxyErrorLogMiddleware.LinesPerWindow + 15;

        for (var i = 0; i < requests; i++)
        {
            await middleware.InvokeAsync(Request());
        }

        var lines = _logger.Collector.GetSnapshot();
        Assert.Equal(ProxyErrorLogMiddleware.LinesPerWindow, lines.Count);
        Assert.All(lines, line =>
        {
            Assert.Equal(LogLevel.Information, line.Level);
            Assert.Null(line.Exception);
            Assert.Equal("POST /upload from 192.0.2.10 to -: client fault RequestBodyClient: Bad chunk size data. (0 similar lines suppressed before this one)", line.Message);
        });

        _time.Advance(ProxyErrorLogMiddleware.Window);
        await middleware.InvokeAsync(Request());

        Assert.Equal("15", _logger.LatestRecord.GetStructuredStateValue("Suppressed"));
    }

    [Fact]
    public async Task DestinationFault_IsAWarning_WithItsOwnBudget()
    {
        var client = Middleware(ForwarderError.RequestBodyClient, new BadHttpRequestException("Bad chunk size data."));
        for (var i = 0; i < ProxyErrorLogMiddleware.LinesPerWindow; i++)
        {
            await client.InvokeAsync(Request());
        }

        await Middleware(ForwarderError.Request, new HttpRequestException("Connection refused (127.0.0.1:5001)")).InvokeAsync(Request());

        Assert.Equal(LogLevel.Warning, _logger.LatestRecord.Level);
        Assert.Contains("Request: Connection refused (127.0.0.1:5001)", _logger.LatestRecord.Message, StringComparison.Ordinal);
        Assert.Null(_logger.LatestRecord.Exception);
    }

    [Fact]
    public async Task NoError_NothingLogged()
    {
        await Middleware(ForwarderError.None, null).InvokeAsync(Request());

        Assert.Equal(0, _logger.Collector.Count);
    }

    private ProxyErrorLogMiddleware Middleware(ForwarderError error, Exception? exception)
    {
        var options = new ServiceCollection().Configure<BalancerOptions>(_ => { }).BuildServiceProvider().GetRequiredService<IOptionsMonitor<BalancerOptions>>();
        return new ProxyErrorLogMiddleware(
            context =>
            {
                context.Features.Set<IForwarderErrorFeature>(new Failure(error, exception));
                return Task.CompletedTask;
            },
            new ClientIpResolver(options),
            _time,
            _logger);
    }

    private static DefaultHttpContext Request()
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.10");
        context.Request.Method = "POST";
        context.Request.Path = "/upload";
        return context;
    }

    private sealed record Failure(ForwarderError Error, Exception? Exception) : IForwarderErrorFeature;
}
