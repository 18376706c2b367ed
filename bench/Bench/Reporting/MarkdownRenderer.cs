using System.Text;

namespace Bench.Reporting;

/// <summary>Renders a <see cref="Report"/> as GitHub-flavoured markdown; charts are linked by file name.</summary>
internal static class MarkdownRenderer
{
    public const string Met = "met";
    public const string NotMet = "not met";

    public static string Render(Report report)
    {
        var text = new StringBuilder();
        text.Append("# ").AppendLine(report.Title).AppendLine();
        foreach (var line in report.Preamble)
        {
            text.AppendLine(line);
        }

        if (report.Targets.Count > 0)
        {
            text.AppendLine().AppendLine("## Targets").AppendLine();
            text.AppendLine("| experiment | target | measured | result |");
            text.AppendLine("|---|---|---|---|");
            foreach (var target in report.Targets)
            {
                text.Append("| ").Append(Cell(target.Experiment))
                    .Append(" | ").Append(Cell(target.Target))
                    .Append(" | ").Append(Cell(target.Measured))
                    .Append(" | ").Append(target.Met ? "**" + Met + "**" : "**" + NotMet + "**").AppendLine(" |");
            }
        }

        foreach (var section in report.Sections)
        {
            text.AppendLine().Append("## ").AppendLine(section.Title);
            foreach (var block in section.Blocks)
            {
                text.AppendLine();
                switch (block)
                {
                    case Paragraph paragraph:
                        text.AppendLine(paragraph.Text);
                        break;
                    case Table table:
                        AppendTable(text, table);
                        break;
                    case Chart chart:
                        text.Append("![").Append(chart.Alt).Append("](").Append(chart.FileName).AppendLine(")");
                        break;
                    default:
                        throw new InvalidOperationException($"Unknown block {block.GetType().Name}.");
                }
            }
        }

        return text.ToString();
    }

    /// <summary>
    /// Writes report.md and every chart into <paramref name="directory"/>, replacing the report and charts of
    /// an earlier run there (a chart the new report does not draw would otherwise outlive it); returns
    /// report.md's path.
    /// </summary>
    public static string Write(Report report, string directory)
    {
        Directory.CreateDirectory(directory);
        foreach (var old in Directory.EnumerateFiles(directory).Where(f => f.EndsWith(".md", StringComparison.Ordinal) || f.EndsWith(".svg", StringComparison.Ordinal)))
        {
            File.Delete(old);
        }

        foreach (var section in report.Sections)
        {
            foreach (var block in section.Blocks)
            {
                if (block is Chart chart)
                {
                    File.WriteAllText(Path.Combine(directory, chart.FileName), chart.Svg);
                }
            }
        }

        var path = Path.Combine(directory, "report.md");
        File.WriteAllText(path, Render(report));
        return path;
    }

    /// <summary>Removes the <c>raw</c> folder (process logs and configs) an earlier run left in <paramref name="directory"/>.</summary>
    public static void DeleteRaw(string directory)
    {
        var raw = Path.Combine(directory, "raw");
        if (Directory.Exists(raw))
        {
            Directory.Delete(raw, recursive: true);
        }
    }

    private static void AppendTable(StringBuilder text, Table table)
    {
        text.Append('|');
        foreach (var header in table.Headers)
        {
            text.Append(' ').Append(Cell(header)).Append(" |");
        }

        text.AppendLine().Append('|');
        for (var i = 0; i < table.Headers.Count; i++)
        {
            text.Append(i == 0 ? "---|" : "---:|");
        }

        text.AppendLine();
        foreach (var row in table.Rows)
        {
            text.Append('|');
            foreach (var cell in row)
            {
                text.Append(' ').Append(Cell(cell)).Append(" |");
            }

            text.AppendLine();
        }
    }

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal).ReplaceLineEndings(" ");
}
