using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace BareYarp;

/// <summary>
/// Plain YARP as its documentation sets it up: LoadFromConfig and the built-in policies, no metrics,
/// no tracing, no retries, no management listener. The benchmark's overhead experiment runs it beside
/// the balancer on the same config file, so the difference is the cost of the balancer's features.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var config = ValueOf(args, "--config");
        if (config is null)
        {
            Console.Error.WriteLine("Usage: BareYarp --config FILE [--runtime-defaults | --no-inline-scheduling | --no-inline-completions]   (reads Balancer:Listen and ReverseProxy from FILE)");
            return 2;
        }

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.AddJsonFile(Path.GetFullPath(config), optional: false, reloadOnChange: false);
        // The same host flavour and log levels as the balancer (CreateBuilder, Microsoft.AspNetCore and Yarp at Warning).
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning).AddFilter("Yarp", LogLevel.Warning);

        // The balancer's two runtime settings, so that the overhead experiment measures its features and
        // nothing else: no per-request hosting Activity, and I/O continuations inline on the epoll threads
        // (src/Balancer/Hosting/BalancerHost.cs, src/Balancer/Program.cs and InlineIoScheduling.cs). --runtime-defaults leaves both
        // as ASP.NET Core ships them, to show what the settings are worth on their own; --no-inline-scheduling
        // (Kestrel's part) and --no-inline-completions (the sockets' part, unless the environment already set it)
        // leave out one part of the second, to measure each alone.
        if (Array.IndexOf(args, "--runtime-defaults") < 0)
        {
            builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
            if (Array.IndexOf(args, "--no-inline-completions") < 0)
            {
                Environment.SetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS", "1");
            }

            if (Array.IndexOf(args, "--no-inline-scheduling") < 0)
            {
                builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
            }
        }

        // The same listener shape as the balancer's proxy listener: HTTP/1.1 only, Kestrel defaults otherwise.
        var listen = new Uri(builder.Configuration["Balancer:Listen"] ?? "http://127.0.0.1:8080");
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(System.Net.IPAddress.Parse(listen.Host), listen.Port, l => l.Protocols = HttpProtocols.Http1));
        builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));

        var app = builder.Build();
        app.MapReverseProxy();
        app.Run();
        return 0;
    }

    private static string? ValueOf(string[] args, string name)
    {
        var index = Array.IndexOf(args, name);
        return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
    }
}
