using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace Balancer.Management;

/// <summary>
/// The live status page (<c>GET /</c> on the management listener): one self-contained HTML document,
/// embedded in the assembly, that polls <c>/status</c> every second. It needs nothing from the network
/// but the balancer itself, so it works on an air-gapped host.
/// </summary>
internal static partial class StatusPage
{
    private const string ResourceName = "Balancer.Management.status.html";

    // The policy lets only the page's own inline script and style (pinned by hash) run, and lets it fetch
    // only from the balancer: an error message or destination id that reached the DOM as markup could not execute.
    private static readonly (byte[] Html, string ContentSecurityPolicy) Page = Load();

    public static Task WriteAsync(HttpContext context)
    {
        var response = context.Response;
        response.ContentType = "text/html; charset=utf-8";
        response.ContentLength = Page.Html.Length;
        var headers = response.Headers;
        headers.CacheControl = "no-store";
        headers.ContentSecurityPolicy = Page.ContentSecurityPolicy;
        headers.XContentTypeOptions = "nosniff";
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "no-referrer";
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(Page.Html).AsTask();
    }

    private static (byte[] Html, string ContentSecurityPolicy) Load()
    {
        using var stream = typeof(StatusPage).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"Embedded resource {ResourceName} is missing from the build.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var html = reader.ReadToEnd();
        var contentSecurityPolicy =
            "default-src 'none'; connect-src 'self'; img-src 'self'; " +
            $"script-src {Hash(ScriptBlock(), html)}; style-src {Hash(StyleBlock(), html)}; " +
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        return (Encoding.UTF8.GetBytes(html), contentSecurityPolicy);
    }

    private static string Hash(Regex block, string html)
    {
        var match = block.Match(html);
        if (!match.Success)
        {
            throw new InvalidOperationException($"{ResourceName} has no block matching {block}.");
        }

        return $"'sha256-{Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(match.Groups[1].Value)))}'";
    }

    [GeneratedRegex("<script>(.*?)</script>", RegexOptions.Singleline)]
    private static partial Regex ScriptBlock();

    [GeneratedRegex("<style>(.*?)</style>", RegexOptions.Singleline)]
    private static partial Regex StyleBlock();
}
