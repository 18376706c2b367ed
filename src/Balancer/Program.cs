using Balancer.Configuration;
using Balancer.Hosting;
using LoadBalancer.Shared;

namespace Balancer;

public static class Program
{
    private const string Usage = """
        Usage:
          Balancer --config FILE [--Key:Sub value ...]   run the balancer; FILE is watched and reloaded
          Balancer --check-config FILE                   validate FILE and exit (0 valid, 1 invalid)
          Balancer --check-config NEW --against CURRENT  validate NEW and print what it would change against CURRENT
          Balancer --probe URL                           GET URL, exit 0 on 2xx (container HEALTHCHECK)
        """;

    public static int Main(string[] args)
    {
        if (HttpProbe.UrlFrom(args) is { } probeUrl)
        {
            // The management token, when one is set, rides along so the probe works whichever
            // management paths end up requiring it.
            return HttpProbe.Run(probeUrl, bearerToken: Environment.GetEnvironmentVariable("Balancer__Management__Token"));
        }

        var configPath = ValueOf(args, "--config") ?? Environment.GetEnvironmentVariable("BALANCER_CONFIG");
        var checkPath = ValueOf(args, "--check-config");
        if (checkPath is not null)
        {
            return CheckConfig(checkPath, ValueOf(args, "--against"));
        }

        if (string.IsNullOrWhiteSpace(configPath))
        {
            Console.Error.WriteLine("No config file given." + Environment.NewLine + Usage);
            return 2;
        }

        WebApplication app;
        try
        {
            app = BalancerHost.Create(configPath, args);
        }
        catch (InvalidConfigFileException e)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }

        using (app)
        {
            // Process-wide, so here where the process starts rather than in every host that is built.
            InlineIoScheduling.ApplyToProcess(app.Configuration);
            try
            {
                app.Start();
            }
            catch (IOException e)
            {
                // A listener that cannot be bound (address in use, no permission for the port): the
                // operator's problem to fix, said in one line rather than as a crash.
                Console.Error.WriteLine($"Cannot start: {e.Message}");
                return 1;
            }

            // SIGTERM or Ctrl-C: stop accepting, let requests in flight finish (Balancer:ShutdownTimeout), exit 0.
            app.WaitForShutdown();
        }

        return 0;
    }

    private static int CheckConfig(string path, string? againstPath)
    {
        var result = ConfigFile.Read(path);
        if (!result.IsValid)
        {
            Console.Error.WriteLine(new InvalidConfigFileException(Path.GetFullPath(path), result.Errors).Message);
            return 1;
        }

        Console.Out.WriteLine($"{Path.GetFullPath(path)}: OK");
        if (againstPath is null)
        {
            return 0;
        }

        var current = ConfigFile.Read(againstPath);
        if (!current.IsValid)
        {
            Console.Error.WriteLine("Cannot compare: " + new InvalidConfigFileException(Path.GetFullPath(againstPath), current.Errors).Message);
            return 1;
        }

        Console.Out.WriteLine($"Changes against {Path.GetFullPath(againstPath)}:");
        Console.Out.Write(ConfigPreview.Format(ConfigPreview.Compare(current.ToConfiguration(), result.ToConfiguration())));
        return 0;
    }

    private static string? ValueOf(string[] args, string name)
    {
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == name)
            {
                return i + 1 < args.Length ? args[i + 1] : string.Empty;
            }

            if (args[i].StartsWith(name + "=", StringComparison.Ordinal))
            {
                return args[i][(name.Length + 1)..];
            }
        }

        return null;
    }
}
