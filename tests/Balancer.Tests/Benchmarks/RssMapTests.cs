using System.Globalization;
using Balancer.Tests.Deployment;

namespace Balancer.Tests.Benchmarks;

/// <summary>
/// bench/rss-map.sh read against this test process: a .NET process that maps assemblies and native libraries,
/// JIT-compiles code and has a GC heap, so every part the benchmarks report on is there to be found.
/// </summary>
[Trait("Category", "Unit")]
public sealed class RssMapTests
{
    [Fact]
    public void Line_OfThisProcess_SplitsItsResidentMemoryIntoPartsThatAddUpToVmRss()
    {
        var before = VmRssMb();
        var result = Repo.Run("bash", ["bench/rss-map.sh", "--line", Environment.ProcessId.ToString(CultureInfo.InvariantCulture)]);
        var after = VmRssMb();

        Assert.True(result.ExitCode == 0, result.Stderr);
        var parts = result.Stdout.Trim().Split(' ')
            .Select(p => p.Split('='))
            .ToDictionary(p => p[0], p => double.Parse(p[1], CultureInfo.InvariantCulture));

        foreach (var part in new[] { "assemblies", "native-libraries", "jit-code", "gc-heap", "malloc", "anon" })
        {
            Assert.True(parts.GetValueOrDefault(part) > 0, $"no {part} in '{result.Stdout.Trim()}'");
        }

        var total = parts["total"];
        Assert.InRange(total, Math.Min(before, after) * 0.9, Math.Max(before, after) * 1.1);
        // Each part is rounded to 0.1 MB, so their sum may differ from the total by that much per part.
        Assert.InRange(parts.Where(p => p.Key != "total").Sum(p => p.Value), total - 0.05 * parts.Count, total + 0.05 * parts.Count);
    }

    [Fact]
    public void NoSuchProcess_ExitsWithAMessage()
    {
        var result = Repo.Run("bash", ["bench/rss-map.sh", "2147483647"]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no process 2147483647", result.Stderr, StringComparison.Ordinal);
    }

    private static double VmRssMb() =>
        double.Parse(File.ReadLines("/proc/self/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
}
