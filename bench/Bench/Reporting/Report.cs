using System.Globalization;

namespace Bench.Reporting;

/// <summary>A benchmark report: sections of text, tables and charts, and the project's targets with verdicts.</summary>
internal sealed class Report(string title)
{
    public string Title { get; } = title;

    public List<string> Preamble { get; } = [];

    public List<Section> Sections { get; } = [];

    public List<TargetCheck> Targets { get; } = [];

    public Section Add(string title)
    {
        var section = new Section(title);
        Sections.Add(section);
        return section;
    }
}

internal sealed class Section(string title)
{
    public string Title { get; } = title;

    public List<Block> Blocks { get; } = [];

    public Section Text(string text)
    {
        Blocks.Add(new Paragraph(text));
        return this;
    }

    public Section Table(Table table)
    {
        Blocks.Add(table);
        return this;
    }

    public Section Chart(string fileName, string alt, string svg)
    {
        Blocks.Add(new Chart(fileName, alt, svg));
        return this;
    }
}

internal abstract record Block;

internal sealed record Paragraph(string Text) : Block;

/// <summary>A chart stored beside report.md and linked from it.</summary>
internal sealed record Chart(string FileName, string Alt, string Svg) : Block;

/// <summary>A table whose first column labels the row; every other cell is a measured number.</summary>
internal sealed record Table(IReadOnlyList<string> Headers) : Block
{
    public List<IReadOnlyList<string>> Rows { get; } = [];

    public Table Row(string label, params double[] values)
    {
        if (values.Length != Headers.Count - 1)
        {
            throw new ArgumentException($"Row '{label}' has {values.Length} values for {Headers.Count - 1} columns.");
        }

        var cells = new string[values.Length + 1];
        cells[0] = label;
        for (var i = 0; i < values.Length; i++)
        {
            cells[i + 1] = Format.Number(values[i]);
        }

        Rows.Add(cells);
        return this;
    }
}

/// <summary>One of the project's targets, judged from the measured data.</summary>
internal sealed record TargetCheck(string Experiment, string Target, string Measured, bool Met);

internal static class Format
{
    /// <summary>A change in percent with its sign: "+4.2", "-1.1".</summary>
    public static string Signed(double percent) => (percent >= 0 ? "+" : string.Empty) + Number(percent);

    /// <summary>
    /// Numbers as the report shows them: integers plainly, fractions with three significant decimals at
    /// most, never NaN (a missing measurement must fail loudly, not print as a number).
    /// </summary>
    public static string Number(double value)
    {
        if (double.IsNaN(value) || double.IsInfinity(value))
        {
            throw new ArgumentException("A report cell must be a finite number.", nameof(value));
        }

        if (value == Math.Floor(value) && Math.Abs(value) < 1e15)
        {
            return value.ToString("0", CultureInfo.InvariantCulture);
        }

        var magnitude = Math.Abs(value);
        var format = magnitude >= 100 ? "0.#" : magnitude >= 1 ? "0.##" : "0.###";
        var text = value.ToString(format, CultureInfo.InvariantCulture);
        return text is "0" or "-0" ? value.ToString("0.######", CultureInfo.InvariantCulture) : text;
    }

    public static string Ratio(double value) => value.ToString("0.00", CultureInfo.InvariantCulture) + "x";

    public static string Mb(long bytes) => (bytes / 1024.0 / 1024.0).ToString("0.0", CultureInfo.InvariantCulture);
}
