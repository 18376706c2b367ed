using Balancer.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;

namespace PickCost;

/// <summary>A real balancer of N destinations (no load, no active probes) in this process, from a config file of its own.</summary>
internal static class BenchHost
{
    /// <summary>
    /// Starts the balancer, waits <paramref name="pauseBefore"/> (time for a profiler to attach after start-up, so that
    /// its samples are the body's), runs <paramref name="body"/> with it and the config file's path, stops it and deletes the file.
    /// </summary>
    public static async Task RunAsync(int count, TimeSpan pauseBefore, Func<WebApplication, string, Task> body)
    {
        var directory = Directory.CreateTempSubdirectory("pickcost-host-");
        try
        {
            var path = Path.Combine(directory.FullName, "balancer.json");
            await File.WriteAllBytesAsync(path, Program.ConfigJson(count, seed: 0, listen: true));
            await using var app = BalancerHost.Create(path, [], builder => builder.Logging.ClearProviders());
            await app.StartAsync();
            await Task.Delay(pauseBefore);
            await body(app, path);
            await app.StopAsync();
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }
}
