using System.Text.RegularExpressions;
using Balancer.Tests.Deployment;

namespace Balancer.Tests.Architecture;

/// <summary>
/// The health, resilience and management features depend one way: management reads health and resilience,
/// resilience reports to health, health needs neither. Telemetry (the metrics registry, the classification of
/// transport failures that labels them) is used by health and names no health type. A type of another feature can only be named through a
/// using directive or a qualified name, so reading the sources finds every such reference.
/// </summary>
[Trait("Category", "Unit")]
public sealed class FeatureDependencyTests
{
    [Theory]
    [InlineData("Health", "Resilience")]
    [InlineData("Health", "Management")]
    [InlineData("Resilience", "Management")]
    [InlineData("Telemetry", "Health")]
    public void Feature_NamesNoTypeOfAFeatureThatDependsOnIt(string feature, string dependent)
    {
        var files = Directory.GetFiles(Repo.PathOf($"src/Balancer/{feature}"), "*.cs");
        Assert.NotEmpty(files);
        var references = new Regex($@"\busing\s+Balancer\.{dependent}\b|(?<![\w.])(Balancer\.)?{dependent}\.[A-Z]");

        var found = files
            .SelectMany(file => File.ReadAllLines(file).Select((line, i) => (file, line, number: i + 1)))
            .Where(l => references.IsMatch(l.line))
            .Select(l => $"{Path.GetFileName(l.file)}:{l.number}: {l.line.Trim()}")
            .ToList();

        Assert.True(found.Count == 0, $"{feature} names {dependent} types:\n{string.Join('\n', found)}");
    }
}
