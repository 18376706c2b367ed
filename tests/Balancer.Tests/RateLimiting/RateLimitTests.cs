using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Balancer.Configuration;
using Balancer.RateLimiting;
using Balancer.Telemetry;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Yarp.ReverseProxy;

namespace Balancer.Tests.RateLimiting;

/// <summary>
/// The per-client limits of a real balancer, with real clients whose connections leave from 127.0.x.y.
/// Where exact counts depend on time, the limits' clock is a fake one the test steps.
/// </summary>
[Collection(IntegrationCollection.Name)]
public sealed class RateLimitTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task TenPerSecondBurstFive_OneClientSends100AtOnce_Exactly5Through_95Get429_AnotherClientUnaffected_ThenOneEvery100ms()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var lb = await StartAsync(Limit(10, 5), time);
        using var greedy = new SourceAddressClient(IPAddress.Parse("127.0.8.1"));
        using var other = new SourceAddressClient(IPAddress.Parse("127.0.8.2"));
        var served = Served(lb);

        var greedyRequests = Enumerable.Range(0, 100).Select(_ => greedy.GetAsync(lb.ProxyAddress)).ToList();
        var otherRequests = Enumerable.Range(0, 5).Select(_ => other.GetAsync(lb.ProxyAddress)).ToList();
        var greedyResponses = await Task.WhenAll(greedyRequests);
        var otherResponses = await Task.WhenAll(otherRequests);

        Assert.Equal(5, greedyResponses.Count(r => r.StatusCode == HttpStatusCode.OK));
        var refused = greedyResponses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.Equal(95, refused.Count);
        Assert.All(refused, r =>
        {
            Assert.Equal("1", r.Headers.GetValues("Retry-After").Single());
            Assert.False(r.Headers.Contains("X-Backend"));
        });
        Assert.All(otherResponses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(10, Served(lb) - served);
        foreach (var response in greedyResponses.Concat(otherResponses))
        {
            response.Dispose();
        }

        // One token every 100 ms: half of it is not enough, the whole is, and never two.
        Assert.Equal(HttpStatusCode.TooManyRequests, await StatusAsync(greedy, lb));
        time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(HttpStatusCode.TooManyRequests, await StatusAsync(greedy, lb));
        time.Advance(TimeSpan.FromMilliseconds(50));
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(greedy, lb));
        for (var i = 0; i < 10; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(100));
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(greedy, lb));
            Assert.Equal(HttpStatusCode.TooManyRequests, await StatusAsync(greedy, lb));
        }

        var limited = 95 + 2 + 10;
        Assert.Equal(limited, (await lb.MetricsAsync()).Value("balancer_rate_limited_total", ("cluster", "backends"), ("limit", "rate")));
        Assert.Equal(0, (await lb.MetricsAsync()).Value("balancer_rate_limited_total", ("cluster", "backends"), ("limit", "concurrency")));
        Assert.Equal(limited, (long)(await lb.StatusAsync())["clusters"]![0]!["rateLimited"]!);
    }

    [Fact]
    public async Task TenPerSecond_OnTheRealClock_AClientSendingFlatOutGetsTheBurstThenAboutTenASecond()
    {
        await using var lb = await StartAsync(Limit(10, 5));
        using var client = new SourceAddressClient(IPAddress.Parse("127.0.8.3"));

        // The clock starts once the first request is through: connecting the first time is slow.
        Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, lb));
        var ok = 1;
        var sent = new List<double> { 0 };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(2))
        {
            sent.Add(clock.Elapsed.TotalSeconds);
            ok += await StatusAsync(client, lb) == HttpStatusCode.OK ? 1 : 0;
        }

        var seconds = clock.Elapsed.TotalSeconds;
        // Never more than the burst and one per 100 ms of the whole time.
        Assert.InRange(ok, 1, 5 + (int)Math.Ceiling(10 * seconds) + 1);
        // And as many as the same bucket grants at the moments the requests were sent: a stall of this
        // loaded machine longer than the burst lasts (0.5 s) loses tokens for the balancer and for this model alike.
        var tokens = 5.0;
        var granted = 0;
        for (var i = 0; i < sent.Count; i++)
        {
            tokens = Math.Min(5, tokens + (i == 0 ? 0 : 10 * (sent[i] - sent[i - 1])));
            if (tokens >= 1)
            {
                tokens--;
                granted++;
            }
        }

        Assert.InRange(ok, granted - 2, granted + 2);
        Assert.True(granted >= 15, $"only {granted} of {sent.Count} requests could have passed: the client was too slow to test the rate");
    }

    [Fact]
    public async Task ForwardedClientIp_CountsOnlyFromATrustedProxy()
    {
        await using var lb = await StartAsync(c =>
        {
            Limit(0.01, 2)(c);
            c["Balancer"]!["TrustedProxies"] = new JsonArray("127.0.9.1");
        });
        using var proxy = new SourceAddressClient(IPAddress.Parse("127.0.9.1"));
        using var spoofer = new SourceAddressClient(IPAddress.Parse("127.0.9.2"));

        // Two clients behind the trusted proxy: a bucket each.
        foreach (var client in new[] { "198.51.100.7", "198.51.100.8" })
        {
            Assert.Equal(
                [HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests],
                await StatusesAsync(proxy, lb, 3, _ => client));
        }

        // An untrusted peer cannot escape its bucket by making up a new address each time.
        Assert.Equal(
            [HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests],
            await StatusesAsync(spoofer, lb, 4, i => $"203.0.113.{i + 1}"));
    }

    [Fact]
    public async Task MaxConcurrentPerClient_TwoInFlight_TheThirdGets429_OtherClientsAndLaterRequestsPass()
    {
        await using var lb = await StartAsync(c => c["Balancer"]!["RateLimit"] = new JsonObject { ["MaxConcurrentPerClient"] = 2 });
        using var busy = new SourceAddressClient(IPAddress.Parse("127.0.10.1"));
        using var other = new SourceAddressClient(IPAddress.Parse("127.0.10.2"));
        var slow = Enumerable.Range(0, 2).Select(_ => busy.GetAsync(new Uri(lb.ProxyAddress, "/delay/3000"))).ToList();
        await Poll.UntilAsync(async () => (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().Sum(d => (int)d!["inFlight"]!) == 2, Deadline, "two slow requests in flight");

        using (var third = await busy.GetAsync(lb.ProxyAddress))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, third.StatusCode);
            Assert.Equal("1", third.Headers.GetValues("Retry-After").Single());
            Assert.Contains("too many requests in flight", await third.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.OK, await StatusAsync(other, lb));
        foreach (var response in await Task.WhenAll(slow))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        Assert.Equal(HttpStatusCode.OK, await StatusAsync(busy, lb));
        Assert.Equal(1, (await lb.MetricsAsync()).Value("balancer_rate_limited_total", ("cluster", "backends"), ("limit", "concurrency")));
    }

    [Fact]
    public async Task HundredThousandClientAddresses_Partitions_AreAllDropped_TenSecondsAfterTheirBucketsRefilled()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var lb = await StartAsync(Limit(10, 5), time);
        var limits = lb.App.Services.GetRequiredService<ClientLimits>();
        var settings = limits.SettingsFor(null);

        for (var i = 0; i < 100_000; i++)
        {
            // 10.0.0.0 onwards: as many distinct addresses as a scan or a botnet would bring.
            using var lease = limits.AcquireRate(settings, new IPAddress(BitConverter.GetBytes(0x0A000000 + i).Reverse().ToArray()));
            Assert.True(lease.IsAcquired);
        }

        Assert.Equal(100_000, limits.RateBuckets);
        time.Advance(TimeSpan.FromSeconds(10.2));
        await Poll.UntilAsync(() => limits.RateBuckets == 0, Deadline, $"the idle partitions to be dropped; {limits.RateBuckets} left");
    }

    [Fact]
    public async Task RealClientsFrom300Addresses_TheirPartitionsExpireWhenIdle_AndAReturningClientGetsAFullBurst()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var lb = await StartAsync(Limit(10, 5), time);
        var limits = lb.App.Services.GetRequiredService<ClientLimits>();
        var addresses = Enumerable.Range(0, 300).Select(i => IPAddress.Parse($"127.0.{12 + (i / 250)}.{(i % 250) + 1}")).ToList();

        foreach (var address in addresses)
        {
            using var client = new SourceAddressClient(address);
            Assert.Equal(HttpStatusCode.OK, await StatusAsync(client, lb));
        }

        Assert.Equal(300, limits.RateBuckets);
        time.Advance(TimeSpan.FromSeconds(11));
        await Poll.UntilAsync(() => limits.RateBuckets == 0, Deadline, $"the idle partitions to be dropped; {limits.RateBuckets} left");

        using var returning = new SourceAddressClient(addresses[0]);
        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), HttpStatusCode.TooManyRequests], await StatusesAsync(returning, lb, 6));
    }

    [Fact]
    public async Task RouteMetadata_GivesARouteItsOwnLimit()
    {
        await using var lb = await StartAsync(c => c["ReverseProxy"]!["Routes"]!["strict"] = new JsonObject
        {
            ["ClusterId"] = "backends",
            ["Match"] = new JsonObject { ["Path"] = "/strict/{**rest}" },
            ["Metadata"] = new JsonObject { ["RateLimit.RequestsPerSecond"] = "0.01", ["RateLimit.Burst"] = "2" },
        });
        using var client = new SourceAddressClient(IPAddress.Parse("127.0.11.1"));

        var strict = await StatusesAsync(client, lb, 3, path: "/strict/x");
        Assert.Equal(HttpStatusCode.TooManyRequests, strict[2]);
        Assert.DoesNotContain(HttpStatusCode.TooManyRequests, strict[..2]);
        Assert.All(await StatusesAsync(client, lb, 10), s => Assert.Equal(HttpStatusCode.OK, s));
    }

    [Fact]
    public async Task Limits_NoLimiterUntilOneIsConfigured_ReloadLive_AnInvalidValueIsRejected_AndTheLastGoodLimitsStay()
    {
        await using var lb = await StartAsync(_ => { });
        var limits = lb.App.Services.GetRequiredService<ClientLimits>();
        using var client = new SourceAddressClient(IPAddress.Parse("127.0.11.2"));
        Assert.All(await StatusesAsync(client, lb, 10), s => Assert.Equal(HttpStatusCode.OK, s));
        // A partitioned limiter ticks a timer ten times a second: none may exist while nothing is limited.
        Assert.False(limits.LimitersCreated);

        lb.WriteConfig(lb.Config("RoundRobin", Limit(0.01, 2)));
        await ReloadedAsync(lb, "success", 1);
        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.OK, HttpStatusCode.TooManyRequests], await StatusesAsync(client, lb, 3));
        Assert.True(limits.LimitersCreated);

        lb.WriteConfig(lb.Config("RoundRobin", c => c["Balancer"]!["RateLimit"] = new JsonObject { ["RequestsPerSecond"] = 100, ["Burst"] = -1 }));
        await ReloadedAsync(lb, "failure", 1);
        Assert.Contains("Balancer:RateLimit:Burst: '-1' must be a whole number from 0 to 1000000", (string)(await lb.StatusAsync())["lastReload"]!["error"]!, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.TooManyRequests, await StatusAsync(client, lb));

        lb.WriteConfig("RoundRobin");
        await ReloadedAsync(lb, "success", 2);
        Assert.All(await StatusesAsync(client, lb, 10), s => Assert.Equal(HttpStatusCode.OK, s));
    }

    private static Action<JsonObject> Limit(double perSecond, int burst) =>
        c => c["Balancer"]!["RateLimit"] = new JsonObject { ["RequestsPerSecond"] = perSecond, ["Burst"] = burst };

    /// <summary>A balancer whose limits run on <paramref name="time"/> (everything else on the real clock).</summary>
    private static Task<BalancerFixture> StartAsync(Action<JsonObject> edit, TimeProvider? time = null) =>
        BalancerFixture.StartAsync(edit: edit, configure: time is null ? null : builder => builder.Services.AddSingleton(services => new ClientLimits(
            services.GetRequiredService<IOptionsMonitor<BalancerOptions>>(),
            services.GetRequiredService<BalancerMetricsRegistry>(),
            services.GetRequiredService<IProxyStateLookup>(),
            time)));

    private static long Served(BalancerFixture lb) => lb.Backends.Sum(b => b.State.Served);

    private static async Task<HttpStatusCode> StatusAsync(SourceAddressClient client, BalancerFixture lb, string path = "/", string? forwardedFor = null)
    {
        using var response = await client.GetAsync(
            new Uri(lb.ProxyAddress, path),
            forwardedFor is null ? null : [new("X-Forwarded-For", forwardedFor)]);
        return response.StatusCode;
    }

    private static async Task<HttpStatusCode[]> StatusesAsync(SourceAddressClient client, BalancerFixture lb, int count, Func<int, string>? forwardedFor = null, string path = "/")
    {
        var statuses = new HttpStatusCode[count];
        for (var i = 0; i < count; i++)
        {
            statuses[i] = await StatusAsync(client, lb, path, forwardedFor?.Invoke(i));
        }

        return statuses;
    }

    private static Task ReloadedAsync(BalancerFixture lb, string result, int count) =>
        Poll.UntilAsync(async () => (await lb.MetricsAsync()).Value("balancer_config_reloads_total", ("result", result)) >= count, Deadline, $"reload {result} {count}");
}
