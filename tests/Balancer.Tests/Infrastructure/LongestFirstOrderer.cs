using Balancer.Tests.Integration;
using Xunit.Abstractions;

[assembly: TestCollectionOrderer("Balancer.Tests.Infrastructure.LongestFirstOrderer", "Balancer.Tests")]

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// Starts the longest parallel collections first, so that the serial integration tests, which wait for every
/// parallel collection to finish, are not held up by a scan of minutes started last. The rest keep a stable
/// order by name.
/// </summary>
public sealed class LongestFirstOrderer : ITestCollectionOrderer
{
    private static readonly string[] Longest = [TestsslCollection.Name, FunctionalCollection.Name];

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections
            .OrderBy(c => Array.IndexOf(Longest, c.DisplayName) is var i && i >= 0 ? i : Longest.Length)
            .ThenBy(c => c.DisplayName, StringComparer.Ordinal);
}
