using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging.Testing;

namespace Balancer.Tests.Tls;

/// <summary>Backends over HTTPS: a private CA by bundle, HTTP/2 by YARP's own keys, unchecked only when asked loudly.</summary>
[Collection(FunctionalCollection.Name)]
public sealed class HttpsBackendTests : IDisposable
{
    private readonly TestCertificates _certificates = new("Backend Private CA");

    [Fact]
    public async Task HttpsBackends_TrustedByCaBundle_OverHttp2_SpreadExactly()
    {
        await using var lb = await BalancerFixture.StartAsync(
            "RoundRobin",
            config =>
            {
                config["Balancer"]!["Tls"] = new JsonObject { ["BackendCaBundlePath"] = _certificates.CaPath };
                config["ReverseProxy"]!["Clusters"]!["backends"]!["HttpRequest"] = new JsonObject { ["Version"] = "2", ["VersionPolicy"] = "RequestVersionExact" };
            },
            configureBackends: HttpsBackend());

        var protocols = new List<string>();
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < 30; i++)
        {
            using var response = await lb.Client.GetAsync("/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            protocols.Add(response.Headers.GetValues("X-Protocol").Single());
            var backend = response.Headers.GetValues("X-Backend").Single();
            counts[backend] = counts.GetValueOrDefault(backend) + 1;
        }

        Assert.StartsWith("https://", lb.Backends[0].Address.ToString(), StringComparison.Ordinal);
        Assert.All(protocols, p => Assert.Equal("HTTP/2", p));
        Assert.Equal(new Dictionary<string, int> { ["A"] = 10, ["B"] = 10, ["C"] = 10 }, counts);
    }

    [Fact]
    public async Task HttpsBackends_FromAnUnknownCa_AreRefused()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", configureBackends: HttpsBackend());

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(0, lb.Backends.Sum(b => b.State.Served));
    }

    [Fact]
    public async Task DangerousAcceptAnyServerCertificate_Serves_AndWarnsNamingTheCluster()
    {
        await using var lb = await BalancerFixture.StartAsync(
            "RoundRobin",
            config => config["ReverseProxy"]!["Clusters"]!["backends"]!["HttpClient"] = new JsonObject { ["DangerousAcceptAnyServerCertificate"] = true },
            configure: builder => builder.Logging.AddFakeLogging(),
            configureBackends: HttpsBackend());

        using var response = await lb.Client.GetAsync("/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var warning = Assert.Single(lb.App.Services.GetFakeLogCollector().GetSnapshot(), r => r.Id.Id == 1803);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("Cluster backends", warning.Message, StringComparison.Ordinal);
        Assert.Contains("NOT checked", warning.Message, StringComparison.Ordinal);
    }

    public void Dispose() => _certificates.Dispose();

    /// <summary>The backend on HTTPS (HTTP/1.1 and HTTP/2) with a certificate of the private CA, telling the protocol it was spoken to in.</summary>
    private Action<WebApplicationBuilder> HttpsBackend()
    {
        var issued = _certificates.Issue("backend-" + Guid.NewGuid().ToString("N"));
        return builder =>
        {
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                listen.UseHttps(X509Certificate2.CreateFromPemFile(issued.CertificatePath, issued.KeyPath));
            }));
            builder.Services.AddSingleton<IStartupFilter>(new ProtocolHeader());
        };
    }

    private sealed class ProtocolHeader : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, after) =>
            {
                context.Response.Headers["X-Protocol"] = context.Request.Protocol;
                return after(context);
            });
            next(app);
        };
    }
}
