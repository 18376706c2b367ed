using System.Xml.Linq;
using Bench.Reporting;

namespace Balancer.Tests.Benchmarks;

[Trait("Category", "Unit")]
public sealed class ReportTests
{
    [Fact]
    public void Render_TargetsSectionsTablesAndCharts_AsMarkdown()
    {
        var report = new Report("Benchmark report");
        report.Preamble.Add("- Machine: test");
        report.Targets.Add(new TargetCheck("race", "RPS >= 0.8x NGINX", "0.91x", Met: true));
        report.Targets.Add(new TargetCheck("overhead", "cost <= 5%", "7.5%", Met: false));
        report.Add("race")
            .Text("Alternated runs.")
            .Table(new Table(["proxy", "RPS", "p99 (ms)"]).Row("balancer", 12345, 1.23456).Row("nginx", 15000.25, 0.0004))
            .Chart("race.svg", "RPS per proxy", "<svg/>");

        var markdown = MarkdownRenderer.Render(report);

        Assert.Equal("""
            # Benchmark report

            - Machine: test

            ## Targets

            | experiment | target | measured | result |
            |---|---|---|---|
            | race | RPS >= 0.8x NGINX | 0.91x | **met** |
            | overhead | cost <= 5% | 7.5% | **not met** |

            ## race

            Alternated runs.

            | proxy | RPS | p99 (ms) |
            |---|---:|---:|
            | balancer | 12345 | 1.23 |
            | nginx | 15000.3 | 0.0004 |

            ![RPS per proxy](race.svg)

            """.ReplaceLineEndings("\n"), markdown.ReplaceLineEndings("\n"));
    }

    [Fact]
    public void Write_PutsReportAndChartsInTheDirectory()
    {
        var directory = Directory.CreateTempSubdirectory("report-test-").FullName;
        try
        {
            var report = new Report("r");
            report.Add("s").Chart("one.svg", "one", "<svg>1</svg>");

            var path = MarkdownRenderer.Write(report, directory);

            Assert.Equal(Path.Combine(directory, "report.md"), path);
            Assert.Equal("<svg>1</svg>", File.ReadAllText(Path.Combine(directory, "one.svg")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Write_ReplacesTheEarlierRunsReportAndCharts_KeepsOtherFiles()
    {
        var directory = Directory.CreateTempSubdirectory("report-test-").FullName;
        try
        {
            var first = new Report("first");
            first.Add("s").Chart("old.svg", "old", "<svg>old</svg>");
            MarkdownRenderer.Write(first, directory);
            File.WriteAllText(Path.Combine(directory, "notes.txt"), "kept");
            var second = new Report("second");
            second.Add("s").Chart("new.svg", "new", "<svg>new</svg>");

            MarkdownRenderer.Write(second, directory);

            Assert.Equal(["new.svg", "notes.txt", "report.md"], Directory.EnumerateFiles(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.StartsWith("# second", File.ReadAllText(Path.Combine(directory, "report.md")), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void DeleteRaw_RemovesTheEarlierRunsLogsOnly()
    {
        var directory = Directory.CreateTempSubdirectory("report-test-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(directory, "raw"));
            File.WriteAllText(Path.Combine(directory, "raw", "balancer.log"), "old");
            File.WriteAllText(Path.Combine(directory, "report.md"), "# old");

            MarkdownRenderer.DeleteRaw(directory);
            MarkdownRenderer.DeleteRaw(directory);

            Assert.False(Directory.Exists(Path.Combine(directory, "raw")));
            Assert.True(File.Exists(Path.Combine(directory, "report.md")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Table_Row_RejectsMissingNumbersAndWrongArity()
    {
        var table = new Table(["label", "value"]);

        Assert.Throws<ArgumentException>(() => table.Row("nan", double.NaN));
        Assert.Throws<ArgumentException>(() => table.Row("infinite", double.PositiveInfinity));
        Assert.Throws<ArgumentException>(() => table.Row("two", 1, 2));
        Assert.Empty(table.Rows);
    }

    [Theory]
    [InlineData(333, "333")]
    [InlineData(1234.56, "1234.6")]
    [InlineData(12.345, "12.35")]
    [InlineData(0.12345, "0.123")]
    [InlineData(0.00012, "0.00012")]
    [InlineData(-2.5, "-2.5")]
    public void Number_ShowsIntegersPlainAndFractionsShort(double value, string expected)
    {
        Assert.Equal(expected, Format.Number(value));
    }

    [Fact]
    public void Cell_WithPipe_IsEscapedSoTheTableKeepsItsColumns()
    {
        var report = new Report("r");
        report.Add("s").Table(new Table(["a|b", "n"]).Row("x|y", 1));

        Assert.Contains("| a\\|b | n |", MarkdownRenderer.Render(report), StringComparison.Ordinal);
        Assert.Contains("| x\\|y | 1 |", MarkdownRenderer.Render(report), StringComparison.Ordinal);
    }

    [Fact]
    public void Bars_OneRectPerValue_WellFormedSvgWithTitles()
    {
        var svg = SvgChart.Bars("RPS & p99", "req/s", ["-c64", "-c256"],
            [new Series("balancer", [100, 200]), new Series("nginx", [150, 50])]);

        var document = XDocument.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        var bars = document.Descendants(ns + "rect").Where(r => r.Element(ns + "title") is not null).ToList();
        Assert.Equal(["balancer -c64: 100 req/s", "nginx -c64: 150 req/s", "balancer -c256: 200 req/s", "nginx -c256: 50 req/s"],
            bars.Select(b => b.Element(ns + "title")!.Value));

        // Axis max is 200: the 200 bar is four times as tall as the 50 bar.
        double Height(int i) => double.Parse(bars[i].Attribute("height")!.Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(4 * Height(3), Height(2), 1);
        Assert.Contains("RPS &amp; p99", svg, StringComparison.Ordinal);
    }

    [Fact]
    public void Lines_OnePolylinePerSeries_WellFormed()
    {
        var svg = SvgChart.Lines("CPU", "%", [1, 2, 3], "seconds", [new Series("cpu", [10, 20, 15]), new Series("rss", [1, 1, 1])]);

        var document = XDocument.Parse(svg);
        var lines = document.Descendants(XName.Get("polyline", "http://www.w3.org/2000/svg")).ToList();
        Assert.Equal(2, lines.Count);
        Assert.Equal(3, lines[0].Attribute("points")!.Value.Split(' ').Length);
    }

    [Theory]
    [InlineData(new[] { 0.0 }, 1)]
    [InlineData(new[] { 7.0, 3 }, 10)]
    [InlineData(new[] { 101.0 }, 200)]
    [InlineData(new[] { 0.3 }, 0.5)]
    [InlineData(new[] { 15000.0, 20000 }, 20000)]
    public void NiceMax_RoundsUpToOneTwoOrFiveTimesAPowerOfTen(double[] values, double expected)
    {
        Assert.Equal(expected, SvgChart.NiceMax(values), 10);
    }

    [Fact]
    public void Bars_NegativeOrMismatchedValues_Throw()
    {
        Assert.Throws<ArgumentException>(() => SvgChart.Bars("t", "u", ["a"], [new Series("s", [-1])]));
        Assert.Throws<ArgumentException>(() => SvgChart.Bars("t", "u", ["a", "b"], [new Series("s", [1])]));
    }
}
