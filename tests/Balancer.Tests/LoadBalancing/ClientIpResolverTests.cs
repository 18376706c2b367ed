using System.Net;
using Balancer.Configuration;
using Balancer.LoadBalancing;
using Microsoft.Extensions.Options;

namespace Balancer.Tests.LoadBalancing;

[Trait("Category", "Unit")]
public sealed class ClientIpResolverTests
{
    [Theory]
    [InlineData("203.0.113.7", "203.0.113.7")]
    [InlineData("203.0.113.7:51234", "203.0.113.7")]
    [InlineData("[2001:db8::7]:443", "2001:db8::7")]
    [InlineData("2001:db8::7", "2001:db8::7")]
    [InlineData("198.51.100.1, 203.0.113.7", "203.0.113.7")]
    [InlineData("203.0.113.7, 10.0.0.2", "203.0.113.7")]
    [InlineData("203.0.113.7,10.0.0.2,10.0.0.3", "203.0.113.7")]
    [InlineData("::ffff:203.0.113.7", "203.0.113.7")]
    public void TrustedPeer_HeaderEntries_GiveTheRightmostUntrustedAddress(string header, string expected)
    {
        var resolver = Resolver("10.0.0.0/8");

        Assert.Equal(IPAddress.Parse(expected), resolver.Resolve(Request("10.0.0.1", header)));
    }

    [Theory]
    [InlineData("unknown")]
    [InlineData("")]
    [InlineData("not-an-address, 10.0.0.2")]
    [InlineData("10.0.0.3, 10.0.0.2")]
    public void TrustedPeer_HeaderWithoutAnUntrustedAddress_GivesTheNearestItCouldRead(string header)
    {
        var resolver = Resolver("10.0.0.0/8");

        var resolved = resolver.Resolve(Request("10.0.0.1", header));

        // Never the unparsable entry; a trusted hop at worst, which still hashes consistently.
        Assert.NotNull(resolved);
        Assert.True(IPNetwork.Parse("10.0.0.0/8").Contains(resolved), $"{resolved}");
    }

    [Fact]
    public void UntrustedPeer_HeaderIgnored()
    {
        var resolver = Resolver("10.0.0.0/8");

        Assert.Equal(IPAddress.Parse("192.0.2.50"), resolver.Resolve(Request("192.0.2.50", "203.0.113.7")));
    }

    [Fact]
    public void NoTrustedProxies_HeaderIgnored_EvenFromLoopback()
    {
        var resolver = Resolver();

        Assert.Equal(IPAddress.Loopback, resolver.Resolve(Request("127.0.0.1", "203.0.113.7")));
    }

    [Fact]
    public void SeveralHeaderLines_ReadAsOneList_LastLineNearest()
    {
        var resolver = Resolver("10.0.0.0/8");
        var context = Request("10.0.0.1", "198.51.100.1");
        context.Request.Headers.Append("X-Forwarded-For", "203.0.113.7, 10.0.0.9");

        Assert.Equal(IPAddress.Parse("203.0.113.7"), resolver.Resolve(context));
    }

    private static ClientIpResolver Resolver(params string[] trusted) =>
        new(new FixedOptions(new BalancerOptions { TrustedProxies = [.. trusted] }));

    private static DefaultHttpContext Request(string peer, string forwardedFor)
    {
        var context = new DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(peer);
        context.Request.Headers["X-Forwarded-For"] = forwardedFor;
        return context;
    }

    private sealed class FixedOptions(BalancerOptions value) : IOptionsMonitor<BalancerOptions>
    {
        public BalancerOptions CurrentValue => value;

        public BalancerOptions Get(string? name) => value;

        public IDisposable? OnChange(Action<BalancerOptions, string?> listener) => null;
    }
}
