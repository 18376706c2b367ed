using LoadBalancer.Shared;

namespace SampleBackend;

public static class Program
{
    public static int Main(string[] args)
    {
        if (HttpProbe.UrlFrom(args) is { } probeUrl)
        {
            // A path (--probe /health) is resolved against where this backend listens: --urls, else ASPNETCORE_URLS.
            var urls = ValueOf(args, "--urls") ?? Environment.GetEnvironmentVariable("ASPNETCORE_URLS");
            return HttpProbe.Run(probeUrl, urls);
        }

        if (Array.IndexOf(args, Rpc.GrpcCallCommand.Flag) >= 0)
        {
            return Rpc.GrpcCallCommand.Run(args, Console.Out, Console.Error);
        }

        BackendApp.Create(args).Run();
        return 0;
    }

    private static string? ValueOf(string[] args, string name)
    {
        var at = Array.IndexOf(args, name);
        return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
    }
}
