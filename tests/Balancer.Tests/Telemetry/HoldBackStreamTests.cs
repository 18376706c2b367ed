using Balancer.Telemetry;

namespace Balancer.Tests.Telemetry;

[Trait("Category", "Unit")]
public sealed class HoldBackStreamTests
{
    [Theory]
    [InlineData(new[] { 16384, 16384, 100 })]
    [InlineData(new[] { 1, 2, 3, 1, 0, 5, 4, 7, 2 })]
    [InlineData(new[] { 3 })]
    [InlineData(new[] { 5, 1, 1, 1, 20, 1 })]
    public async Task Writes_OfAnySize_PassOnAllButTheLastSixBytes_InOrder(int[] sizes)
    {
        var data = Enumerable.Range(0, sizes.Sum()).Select(i => (byte)(i * 7 % 251)).ToArray();
        using var inner = new MemoryStream();
        var stream = new HoldBackStream(inner, 6);

        var offset = 0;
        foreach (var size in sizes)
        {
            await stream.WriteAsync(data.AsMemory(offset, size));
            offset += size;
        }

        var kept = Math.Min(6, data.Length);
        Assert.Equal(data[..^kept], inner.ToArray());
        Assert.Equal(data[^kept..], stream.Held.ToArray());
    }
}
