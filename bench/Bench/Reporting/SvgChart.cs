using System.Globalization;
using System.Security;
using System.Text;

namespace Bench.Reporting;

/// <summary>A named series of values for a chart.</summary>
internal sealed record Series(string Name, IReadOnlyList<double> Values);

/// <summary>Small self-contained SVG charts (no scripts, no external fonts) that render on GitHub.</summary>
internal static class SvgChart
{
    private const int Width = 720;
    private const int Height = 360;
    private const int Left = 70;
    private const int Right = 20;
    private const int Top = 40;
    private const int Bottom = 70;
    private static readonly string[] Colors = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f"];

    /// <summary>Grouped bars: one group per category, one bar per series.</summary>
    public static string Bars(string title, string unit, IReadOnlyList<string> categories, IReadOnlyList<Series> series)
    {
        foreach (var s in series)
        {
            if (s.Values.Count != categories.Count)
            {
                throw new ArgumentException($"Series '{s.Name}' has {s.Values.Count} values for {categories.Count} categories.");
            }
        }

        var max = NiceMax(series.SelectMany(s => s.Values));
        var svg = Begin(title, unit, max);
        var plotWidth = Width - Left - Right;
        var group = plotWidth / (double)categories.Count;
        var bar = group * 0.8 / series.Count;
        for (var c = 0; c < categories.Count; c++)
        {
            var x0 = Left + c * group + group * 0.1;
            for (var s = 0; s < series.Count; s++)
            {
                var value = series[s].Values[c];
                var h = Y(0, max) - Y(value, max);
                svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x0 + s * bar:0.#}\" y=\"{Y(value, max):0.#}\" width=\"{bar * 0.95:0.#}\" height=\"{h:0.#}\" fill=\"{Colors[s % Colors.Length]}\"><title>{Escape(series[s].Name)} {Escape(categories[c])}: {Format.Number(value)} {Escape(unit)}</title></rect>");
                svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x0 + (s + 0.5) * bar:0.#}\" y=\"{Y(value, max) - 4:0.#}\" text-anchor=\"middle\" font-size=\"10\">{Format.Number(value)}</text>");
            }

            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + (c + 0.5) * group:0.#}\" y=\"{Height - Bottom + 18}\" text-anchor=\"middle\">{Escape(categories[c])}</text>");
        }

        return End(svg, series);
    }

    /// <summary>Lines over x (for example seconds since start), one per series; all series share xs.</summary>
    public static string Lines(string title, string unit, IReadOnlyList<double> xs, string xLabel, IReadOnlyList<Series> series)
    {
        if (xs.Count < 1)
        {
            throw new ArgumentException("A line chart needs at least one point.", nameof(xs));
        }

        var max = NiceMax(series.SelectMany(s => s.Values));
        var minX = xs[0];
        var spanX = Math.Max(xs[^1] - minX, 1e-9);
        var svg = Begin(title, unit, max);
        var plotWidth = Width - Left - Right;
        for (var s = 0; s < series.Count; s++)
        {
            var points = new StringBuilder();
            for (var i = 0; i < xs.Count; i++)
            {
                points.Append(CultureInfo.InvariantCulture, $"{Left + (xs[i] - minX) / spanX * plotWidth:0.#},{Y(series[s].Values[i], max):0.#} ");
            }

            svg.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{Colors[s % Colors.Length]}\" stroke-width=\"2\" points=\"{points.ToString().TrimEnd()}\"/>");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left}\" y=\"{Height - Bottom + 18}\">{Format.Number(minX)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width - Right}\" y=\"{Height - Bottom + 18}\" text-anchor=\"end\">{Format.Number(xs[^1])}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left + plotWidth / 2}\" y=\"{Height - Bottom + 18}\" text-anchor=\"middle\">{Escape(xLabel)}</text>");
        return End(svg, series);
    }

    /// <summary>The axis maximum: the largest value rounded up to 1, 2 or 5 times a power of ten.</summary>
    internal static double NiceMax(IEnumerable<double> values)
    {
        var max = 0.0;
        foreach (var value in values)
        {
            if (double.IsNaN(value) || double.IsInfinity(value) || value < 0)
            {
                throw new ArgumentException($"Chart values must be finite and not negative; got {value}.");
            }

            max = Math.Max(max, value);
        }

        if (max == 0)
        {
            return 1;
        }

        var power = Math.Pow(10, Math.Floor(Math.Log10(max)));
        foreach (var step in new[] { 1.0, 2, 5, 10 })
        {
            if (max <= step * power)
            {
                return step * power;
            }
        }

        return 10 * power;
    }

    private static double Y(double value, double max) => Top + (Height - Top - Bottom) * (1 - value / max);

    private static StringBuilder Begin(string title, string unit, double max)
    {
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">{Escape(title)}</text>");
        for (var i = 0; i <= 4; i++)
        {
            var value = max * i / 4;
            var y = Y(value, max);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Left}\" x2=\"{Width - Right}\" y1=\"{y:0.#}\" y2=\"{y:0.#}\" stroke=\"#ddd\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Left - 6}\" y=\"{y + 4:0.#}\" text-anchor=\"end\">{Format.Number(value)}</text>");
        }

        svg.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(16 {(Top + Height - Bottom) / 2}) rotate(-90)\" text-anchor=\"middle\">{Escape(unit)}</text>");
        return svg;
    }

    private static string End(StringBuilder svg, IReadOnlyList<Series> series)
    {
        var x = Left;
        var y = Height - 30;
        for (var s = 0; s < series.Count; s++)
        {
            var width = 24 + 7 * series[s].Name.Length;
            if (x > Left && x + width > Width)
            {
                // A second row rather than entries drawn past the right edge.
                x = Left;
                y += 16;
            }

            svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{x}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{Colors[s % Colors.Length]}\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x + 16}\" y=\"{y + 10}\">{Escape(series[s].Name)}</text>");
            x += width;
        }

        return svg.Append("</svg>").ToString();
    }

    private static string Escape(string text) => SecurityElement.Escape(text) ?? string.Empty;
}
