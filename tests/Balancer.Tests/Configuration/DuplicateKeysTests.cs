using Balancer.Configuration;

namespace Balancer.Tests.Configuration;

[Trait("Category", "Unit")]
public sealed class DuplicateKeysTests
{
    [Fact]
    public void RepeatedNames_ReportedWithTheLinesOfBothDefinitions()
    {
        var json = """
            {
              "ReverseProxy": {
                "Clusters": {
                  "backends": {
                    "Destinations": {
                      "A": { "Address": "http://127.0.0.1:5001/" },
                      "B": { "Address": "http://127.0.0.1:5002/" },

                      "a": { "Address": "http://127.0.0.1:5003/" },
                      "B": { "Address": "http://127.0.0.1:5004/" }
                    }
                  }
                }
              }
            }
            """u8;

        Assert.Equal(
            [
                "ReverseProxy:Clusters:backends:Destinations:a: duplicate key: defined at line 6 and differing from 'A' only in case at line 9 (keys and ids are compared ignoring case)",
                "ReverseProxy:Clusters:backends:Destinations:B: duplicate key: defined at line 7 and again at line 10 (keys and ids are compared ignoring case)",
            ],
            DuplicateKeys.Find(json));
    }

    [Fact]
    public void RepeatedNames_InArraysAndNestedObjects_NamedByTheirPath_SiblingObjectsIndependent()
    {
        var json = """
            {
              "Balancer": { "Listen": [ "http://127.0.0.1:0", { "A": 1,
                "a": 2 } ] },
              "Top": { "K": { "Deep": 1,
                "deep": 2 } },
              "Sibling": { "K": 1, "Deep": 3 }
            }
            """u8;

        Assert.Equal(
            [
                "Balancer:Listen:1:a: duplicate key: defined at line 2 and differing from 'A' only in case at line 3 (keys and ids are compared ignoring case)",
                "Top:K:deep: duplicate key: defined at line 4 and differing from 'Deep' only in case at line 5 (keys and ids are compared ignoring case)",
            ],
            DuplicateKeys.Find(json));
    }

    [Fact]
    public void TenThousandDestinations_CheckedWithoutAnAllocationPerObject()
    {
        var destinations = string.Join(",\n", Enumerable.Range(0, 10_000).Select(i =>
            $$"""    "d{{i:00000}}": { "Address": "http://127.0.0.1:{{5001 + (i % 3)}}/", "Metadata": { "Weight": "{{i % 1000 + 1}}" } }"""));
        var json = System.Text.Encoding.UTF8.GetBytes($$"""{ "ReverseProxy": { "Clusters": { "backends": { "Destinations": {\n{{destinations}}\n} } } } }""");
        DuplicateKeys.Find(json);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var errors = DuplicateKeys.Find(json);
        var perDestination = (GC.GetAllocatedBytesForCurrentThread() - before) / 10_000.0;

        Assert.Empty(errors);
        // Measured about 320 bytes: the id's string, its two frames and the stack's growth. A table of names per
        // object and a path string per frame were about 1,100.
        Assert.InRange(perDestination, 0, 450);
    }
}
