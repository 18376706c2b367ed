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

    [Fact]
    public void WithThePreviousFile_KeysAndValuesSpelledTheSame_AreThePreviousStrings()
    {
        var previous = JsonFlattening.Flatten("""{ "Destinations": { "d1": { "Address": "http://a/", "Weight": "5" }, "D2": { "Address": "http://b/" } } }"""u8.ToArray());

        var next = JsonFlattening.Flatten(
            """{ "Destinations": { "d1": { "Address": "http://a/", "Weight": "7" }, "d2": { "Address": "http://b/" }, "d3": { "Address": "http://a/" } } }"""u8.ToArray(),
            previous);

        // The same keys and values as without the previous file.
        Assert.Equal(Sorted(JsonFlattening.Flatten(
            """{ "Destinations": { "d1": { "Address": "http://a/", "Weight": "7" }, "d2": { "Address": "http://b/" }, "d3": { "Address": "http://a/" } } }"""u8.ToArray())), Sorted(next));
        var kept = next.Keys.ToDictionary(key => key, StringComparer.Ordinal);
        var before = previous.Keys.ToDictionary(key => key, StringComparer.Ordinal);
        // Unchanged key and value: both strings are the previous file's.
        Assert.Same(before["Destinations:d1:Address"], kept["Destinations:d1:Address"]);
        Assert.Same(previous["Destinations:d1:Address"], next["Destinations:d1:Address"]);
        // A new value under an unchanged key: the key is kept, the value is new.
        Assert.Same(before["Destinations:d1:Weight"], kept["Destinations:d1:Weight"]);
        Assert.Equal("7", next["Destinations:d1:Weight"]);
        // A key spelled in another case is the new file's spelling, not the previous one.
        Assert.Contains("Destinations:d2:Address", kept.Keys);
        Assert.DoesNotContain("Destinations:D2:Address", kept.Keys);
        Assert.NotSame(before["Destinations:D2:Address"], kept["Destinations:d2:Address"]);
    }

    [Fact]
    public void ShortValueRepeatedAcrossKeys_IsOneString_LongOnesAreNotShared()
    {
        var data = JsonFlattening.Flatten("""{ "d1": { "Weight": "7" }, "d2": { "Weight": "7" }, "a": "seventeen chars!!", "b": "seventeen chars!!" }"""u8.ToArray());

        Assert.Equal("7", data["d2:Weight"]);
        Assert.Same(data["d1:Weight"], data["d2:Weight"]);
        Assert.Equal(data["a"], data["b"]);
        Assert.NotSame(data["a"], data["b"]);
    }

    [Fact]
    public void WithThePreviousFile_ANewValueAnotherKeyHadBefore_IsThePreviousString()
    {
        // Weights drawn again: d2's new weight is the one d1 had.
        var previous = JsonFlattening.Flatten("""{ "d1": { "Weight": "5" }, "d2": { "Weight": "7" } }"""u8.ToArray());

        var next = JsonFlattening.Flatten("""{ "d1": { "Weight": "7" }, "d2": { "Weight": "5" } }"""u8.ToArray(), previous);

        Assert.Equal("7", next["d1:Weight"]);
        Assert.Equal("5", next["d2:Weight"]);
        Assert.Same(previous["d1:Weight"], next["d2:Weight"]);
    }

    [Fact]
    public void WithThePreviousIndex_SameChildrenAsAFreshIndex_InTheNewFilesSpelling()
    {
        var previousData = JsonFlattening.Flatten("""{ "C": { "d1": { "Address": "x", "Metadata": { "Weight": "1" } }, "D2": { "Address": "y" } } }"""u8.ToArray());
        var previous = new ConfigChildKeys(previousData);
        var data = JsonFlattening.Flatten("""{ "C": { "d1": { "Address": "x", "Metadata": { "Weight": "2" } }, "d2": { "Address": "y" } } }"""u8.ToArray(), previousData);

        var index = new ConfigChildKeys(data, previous);

        var fresh = new ConfigChildKeys(data);
        foreach (var parent in new[] { "C", "C:d1", "C:d1:Metadata", "C:d2" })
        {
            Assert.Equal(fresh.Of(parent), index.Of(parent));
        }

        Assert.Equal(fresh.Of(null), index.Of(null));
        Assert.Equal(["d1", "d2"], index.Of("C"));
        Assert.Equal(["Address", "Metadata"], index.Of("C:d1"));
        // Children listed as before are the previous index's own array; a list that changed (D2 is now d2) is new.
        Assert.Same(previous.Of("C:d1"), index.Of("C:d1"));
        Assert.Same(previous.Of("C:d1:Metadata"), index.Of("C:d1:Metadata"));
        Assert.NotSame(previous.Of("C"), index.Of("C"));
    }

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
