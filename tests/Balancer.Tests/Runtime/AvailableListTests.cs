using Balancer.Runtime;
using Balancer.Tests.LoadBalancing;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.Runtime;

[Trait("Category", "Unit")]
public sealed class AvailableListTests
{
    [Theory]
    [InlineData(1, 71)]
    [InlineData(2, 72)]
    [InlineData(20, 73)]
    [InlineData(300, 74)]
    public void AllButAFew_ReadByPlace_Walked_AndCopied_GiveExactlyTheDestinationsLeftInOrder(int count, int seed)
    {
        var all = Destinations.Many(count, seed);
        var random = new Random(seed);
        for (var round = 0; round < 200; round++)
        {
            // Any positions, the first and the last among them.
            var leftOut = Enumerable.Range(0, count).OrderBy(_ => random.Next()).Take(random.Next(Math.Min(count, AvailableList.MaxLeftOut) + 1)).Order().ToArray();
            DestinationState[] expected = [.. all.Where((_, i) => Array.BinarySearch(leftOut, i) < 0)];
            var list = new AvailableList(all, leftOut);

            Assert.Equal(expected.Length, list.Count);
            Assert.True(expected.SequenceEqual(Enumerable.Range(0, list.Count).Select(i => list[i])));
            Assert.True(expected.SequenceEqual(list));
            var copy = new DestinationState[list.Count + 2];
            list.CopyTo(copy);
            Assert.True(expected.SequenceEqual(copy.Take(list.Count)));
            Assert.Throws<ArgumentOutOfRangeException>(() => list[list.Count]);
            Assert.Throws<ArgumentOutOfRangeException>(() => list[-1]);
        }
    }
}
