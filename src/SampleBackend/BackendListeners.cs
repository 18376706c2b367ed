using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace SampleBackend;

/// <summary>
/// Where the backend listens when it has more than the workload port: the <c>--urls</c> addresses as usual,
/// the <c>--admin-urls</c> ones (connections tagged for <see cref="AdminListener"/>), and the <c>--grpc-urls</c>
/// ones (env <c>BACKEND_GRPC_URLS</c>) speaking HTTP/2 only. Cleartext gRPC needs HTTP/2 with prior
/// knowledge, which Kestrel offers only on an endpoint that speaks nothing else.
/// </summary>
public sealed class BackendListeners
{
    public const string GrpcUrlsKey = "grpc-urls";
    public const string GrpcUrlsEnvironmentKey = "BACKEND_GRPC_URLS";
    public const string AdminUrlsKey = "admin-urls";

    private readonly List<ListenOptions> _http = [];
    private readonly List<ListenOptions> _admin = [];
    private readonly List<ListenOptions> _grpc = [];

    private BackendListeners(IReadOnlyList<BindingAddress> http, IReadOnlyList<BindingAddress> admin, IReadOnlyList<BindingAddress> grpc)
    {
        Http = http;
        Admin = admin;
        Grpc = grpc;
    }

    private IReadOnlyList<BindingAddress> Http { get; }

    private IReadOnlyList<BindingAddress> Admin { get; }

    private IReadOnlyList<BindingAddress> Grpc { get; }

    /// <summary>True when <c>--grpc-urls</c> is given: only then are the gRPC services added.</summary>
    public bool ServesGrpc => Grpc.Count > 0;

    /// <summary>The workload addresses as bound (the real port when 0 was asked for); empty before start.</summary>
    public IReadOnlyList<Uri> HttpAddresses => Bound(_http);

    /// <summary>The admin addresses as bound; empty before start or without <c>--admin-urls</c>.</summary>
    public IReadOnlyList<Uri> AdminAddresses => Bound(_admin);

    /// <summary>The gRPC addresses as bound; empty before start or without <c>--grpc-urls</c>.</summary>
    public IReadOnlyList<Uri> GrpcAddresses => Bound(_grpc);

    /// <summary>
    /// The listeners to bind when admin or gRPC URLs are configured; null when neither is, and Kestrel binds
    /// <c>--urls</c> (or <c>ASPNETCORE_URLS</c>) on its own as before.
    /// </summary>
    public static BackendListeners? From(IConfiguration config)
    {
        var grpc = config[GrpcUrlsKey] ?? config[GrpcUrlsEnvironmentKey];
        var admin = config[AdminUrlsKey];
        if (string.IsNullOrWhiteSpace(grpc) && string.IsNullOrWhiteSpace(admin))
        {
            return null;
        }

        // Once endpoints are bound in code Kestrel ignores --urls, so those are bound here too, the way
        // Kestrel would have: --urls / ASPNETCORE_URLS, else ASPNETCORE_HTTP_PORTS, else its default.
        var urls = config["urls"];
        if (string.IsNullOrWhiteSpace(urls))
        {
            var ports = config["http_ports"];
            urls = string.IsNullOrWhiteSpace(ports)
                ? "http://localhost:5000"
                : string.Join(';', Split(ports).Select(p => $"http://*:{p}"));
        }

        return new BackendListeners(Parse(urls, "urls"), Parse(admin, AdminUrlsKey), Parse(grpc, GrpcUrlsKey));
    }

    public void Configure(KestrelServerOptions kestrel)
    {
        foreach (var address in Http)
        {
            Listen(kestrel, address, _http.Add);
        }

        foreach (var address in Admin)
        {
            Listen(kestrel, address, options =>
            {
                AdminListener.Mark(options);
                _admin.Add(options);
            });
        }

        foreach (var address in Grpc)
        {
            Listen(kestrel, address, options =>
            {
                options.Protocols = HttpProtocols.Http2;
                _grpc.Add(options);
            });
        }
    }

    private static Uri[] Bound(List<ListenOptions> listeners) =>
        [.. listeners.Where(o => o.IPEndPoint is not null).Select(o => new Uri($"http://{o.IPEndPoint}/"))];

    private static void Listen(KestrelServerOptions kestrel, BindingAddress address, Action<ListenOptions> configure)
    {
        if (string.Equals(address.Host, "localhost", StringComparison.OrdinalIgnoreCase) && address.Port != 0)
        {
            kestrel.ListenLocalhost(address.Port, configure);
        }
        else if (string.Equals(address.Host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            // Kestrel cannot give one free port on both loopback families; IPv4 is the one clients try first.
            kestrel.Listen(IPAddress.Loopback, 0, configure);
        }
        else if (IPAddress.TryParse(address.Host, out var ip))
        {
            kestrel.Listen(ip, address.Port, configure);
        }
        else
        {
            // "*", "+" and host names: every interface, as Kestrel does for --urls.
            kestrel.ListenAnyIP(address.Port, configure);
        }
    }

    private static string[] Split(string? urls) =>
        urls is null ? [] : urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private static BindingAddress[] Parse(string? urls, string key)
    {
        var result = new List<BindingAddress>();
        foreach (var url in Split(urls))
        {
            BindingAddress address;
            try
            {
                address = BindingAddress.Parse(url);
            }
            catch (FormatException e)
            {
                throw new ArgumentException($"{key}: '{url}' is not a URL: {e.Message}", e);
            }

            if (!string.Equals(address.Scheme, "http", StringComparison.OrdinalIgnoreCase))
            {
                throw new ArgumentException($"{key}: '{url}' must be an http:// URL (the sample backend serves no TLS)");
            }

            result.Add(address);
        }

        return [.. result];
    }
}
