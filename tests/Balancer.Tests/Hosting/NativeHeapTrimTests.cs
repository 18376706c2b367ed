using Balancer.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace Balancer.Tests.Hosting;

[Trait("Category", "Unit")]
public sealed class NativeHeapTrimTests
{
    [Fact]
    public async Task TrimsOncePerIntervalInWhichTheJitCompiled_NeverWhileItIsQuiet()
    {
        var time = new FakeTimeProvider();
        long compiled = 4_000;
        var trims = 0;
        using var heap = new NativeHeapTrim(time, () => compiled, () => { trims++; return true; });
        await heap.StartAsync(CancellationToken.None);

        // Start-up's compiling is trimmed at the first check.
        time.Advance(NativeHeapTrim.Interval);
        Assert.Equal(1, trims);

        // Quiet: three checks, no call.
        for (var i = 0; i < 3; i++)
        {
            time.Advance(NativeHeapTrim.Interval);
        }

        Assert.Equal(1, trims);

        // A burst over two intervals (a reload's code tiered up): one call after each.
        compiled += 12;
        time.Advance(NativeHeapTrim.Interval);
        compiled += 3;
        time.Advance(NativeHeapTrim.Interval);
        time.Advance(NativeHeapTrim.Interval);
        Assert.Equal(3, trims);
        Assert.Equal(3, heap.Trims);

        await heap.StopAsync(CancellationToken.None);
        compiled++;
        time.Advance(NativeHeapTrim.Interval);
        Assert.Equal(3, trims);
    }

    [Fact]
    public async Task WithoutMallocTrim_StopsChecking()
    {
        var time = new FakeTimeProvider();
        long compiled = 100;
        var calls = 0;
        var reads = 0;
        using var heap = new NativeHeapTrim(time, () => { reads++; return compiled; }, () => { calls++; return false; });
        await heap.StartAsync(CancellationToken.None);

        time.Advance(NativeHeapTrim.Interval);
        compiled++;
        time.Advance(NativeHeapTrim.Interval);
        time.Advance(NativeHeapTrim.Interval);

        Assert.Equal(1, calls);
        Assert.Equal(1, reads);
        Assert.Equal(0, heap.Trims);
    }

    [Fact]
    public void OnThisMachine_MallocTrimIsThere()
    {
        // The CI and development machines run glibc (Debian); the container image is Native AOT, which does not trim.
        Assert.True(OperatingSystem.IsLinux(), "malloc_trim is glibc's");
        Assert.True(NativeHeapTrim.GlibcHeap.Trim());
    }
}
