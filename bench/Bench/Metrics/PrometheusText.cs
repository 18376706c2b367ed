using System.Globalization;
using System.Text.RegularExpressions;

namespace Bench.Metrics;

/// <summary>Reads samples out of the Prometheus text exposition format (the harness and the tests share it).</summary>
internal static partial class PrometheusText
{
    public sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    public static List<Sample> Parse(string text)
    {
        var samples = new List<Sample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var match = SampleLine().Match(line);
            if (!match.Success)
            {
                throw new FormatException($"Not a sample line: {line}");
            }

            var labels = new Dictionary<string, string>();
            foreach (Match label in LabelPair().Matches(match.Groups["labels"].Value))
            {
                labels[label.Groups["k"].Value] = label.Groups["v"].Value;
            }

            samples.Add(new Sample(match.Groups["name"].Value, labels, double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture)));
        }

        return samples;
    }

    /// <summary>The value of the one sample with this name and these labels (others may exist).</summary>
    public static double Value(this List<Sample> samples, string name, params (string Key, string Value)[] labels) =>
        samples.Single(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).Value;

    public static double Sum(this List<Sample> samples, string name) => samples.Where(s => s.Name == name).Sum(s => s.Value);

    /// <summary>
    /// The samples a selector written as in the exposition picks, <c>name{label="value",...}</c>: that name and at
    /// least those labels (<c>name{</c> or an unclosed label list selects by the labels given so far).
    /// </summary>
    public static IEnumerable<Sample> Matching(this List<Sample> samples, string selector)
    {
        var closed = selector.Contains('{', StringComparison.Ordinal) && !selector.EndsWith('}') ? selector.TrimEnd(',') + "}" : selector;
        var wanted = Parse(closed + " 0").Single();
        return samples.Where(s => s.Name == wanted.Name && wanted.Labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value));
    }

    [GeneratedRegex(@"^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})?\s+(?<value>\S+)(\s+\d+)?$")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"(?<k>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<v>(?:[^""\\]|\\.)*)""")]
    private static partial Regex LabelPair();
}
