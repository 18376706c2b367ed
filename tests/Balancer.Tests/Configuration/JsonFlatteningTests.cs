using System.Text;
using System.Text.Json;
using Balancer.Configuration;
using Microsoft.Extensions.Configuration.Json;

namespace Balancer.Tests.Configuration;

/// <summary>The config file's own flattening gives exactly the keys and values of .NET's JSON configuration provider.</summary>
[Trait("Category", "Unit")]
public sealed class JsonFlatteningTests
{
    [Theory]
    [InlineData("""{ "a": "x", "b": { "c": 1.50, "d": true, "e": false, "f": null } }""")]
    [InlineData("""{ "Empty": {}, "Nested": { "Empty": {} }, "EmptyArray": [], "Array": [ 1, "two", { "k": "v" }, [ 3, 4 ], {} ] }""")]
    [InlineData("""{ "Values": [ null, true, -0.0e5, "\u00e9\n\"q\"" ], "Ünïcode key": "v" }""")]
    [InlineData("""
        // comments and trailing commas, as .NET's provider accepts them
        { "ReverseProxy": { "Clusters": { "c": { "Destinations": { "A": { "Address": "http://127.0.0.1:5001/", }, }, }, }, /* end */ }, }
        """)]
    [InlineData("\uFEFF{ \"Bom\": \"first\" }")]
    [InlineData("{}")]
    public void SameKeysAndValuesAsDotNetsJsonProvider(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        var provider = new JsonStreamConfigurationProvider(new JsonStreamConfigurationSource { Stream = new MemoryStream(bytes) });
        provider.Load();

        var flattened = JsonFlattening.Flatten(bytes);

        Assert.Equal(Sorted(AllKeys(provider)), Sorted(flattened));
    }

    [Fact]
    public void KeySetTwiceThroughDifferentSpellings_Rejected()
    {
        var error = Assert.Throws<FormatException>(() => JsonFlattening.Flatten("""{ "a:b": "1", "a": { "b": "2" } }"""u8.ToArray()));

        Assert.Contains("'a:b'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("[ 1, 2 ]")]
    [InlineData("\"text\"")]
    public void TopLevelNotAnObject_Rejected(string json) =>
        Assert.Throws<FormatException>(() => JsonFlattening.Flatten(Encoding.UTF8.GetBytes(json)));

    [Fact]
    public void BrokenJson_RejectedWithTheLine() =>
        Assert.Contains("LineNumber: 1", Assert.ThrowsAny<JsonException>(() => JsonFlattening.Flatten("{ \"a\": 1,\n \"b\" }"u8.ToArray())).Message, StringComparison.Ordinal);

    /// <summary>Every key the provider holds and its value, read through the provider's own lookup.</summary>
    private static Dictionary<string, string?> AllKeys(JsonStreamConfigurationProvider provider)
    {
        var keys = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        void Walk(string? path)
        {
            foreach (var child in provider.GetChildKeys([], path).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                var key = path is null ? child : path + ":" + child;
                if (provider.TryGet(key, out var value))
                {
                    keys[key] = value;
                }

                Walk(key);
            }
        }

        Walk(null);
        return keys;
    }

    private static List<KeyValuePair<string, string?>> Sorted(IDictionary<string, string?> data) =>
        [.. data.OrderBy(p => p.Key, StringComparer.Ordinal)];
}
