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
}
