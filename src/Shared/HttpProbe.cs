namespace LoadBalancer.Shared;

/// <summary>
/// <c>--probe URL</c>: one GET, exit 0 on a 2xx answer and 1 otherwise. The container images are the
/// chiseled .NET runtime images (no shell, no curl, no package manager), so the app probes itself for
/// Docker's HEALTHCHECK instead of shipping curl and everything it pulls in.
/// </summary>
internal static class HttpProbe
{
    public const string Option = "--probe";

    /// <summary>Returns the URL after <c>--probe</c>, or null when the option is absent.</summary>
    public static string? UrlFrom(string[] args)
    {
        var at = Array.IndexOf(args, Option);
        return at < 0 ? null : at + 1 < args.Length ? args[at + 1] : string.Empty;
    }

    /// <summary>
    /// Probes <paramref name="target"/>: an absolute URL, or a path such as <c>/health</c> resolved against
    /// the first of <paramref name="listenUrls"/> (ASP.NET's <c>urls</c> form, <c>;</c>-separated), with a
    /// wildcard host (<c>0.0.0.0</c>, <c>*</c>, <c>+</c>, <c>[::]</c>) replaced by loopback. A path lets one
    /// image HEALTHCHECK serve containers that listen on different ports.
    /// </summary>
    public static int Run(string target, string? listenUrls = null, string? bearerToken = null)
    {
        var uri = Resolve(target, listenUrls);
        if (uri is null)
        {
            Console.Error.WriteLine($"{Option}: '{target}' is not an absolute http:// URL, nor a path with an http:// listen URL to resolve it against (urls: '{listenUrls}')");
            return 2;
        }

        // Shorter than Docker's default HEALTHCHECK timeout (30 s), so a hung server is reported as
        // unhealthy by us, with a reason, rather than killed by Docker without one.
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        if (!string.IsNullOrEmpty(bearerToken))
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", bearerToken);
        }

        try
        {
            using var response = client.Send(request);
            var code = (int)response.StatusCode;
            if (response.IsSuccessStatusCode)
            {
                Console.Out.WriteLine($"{uri}: {code}");
                return 0;
            }

            Console.Error.WriteLine($"{uri}: {code}");
            return 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"{uri}: {e.Message}");
            return 1;
        }
    }

    internal static Uri? Resolve(string target, string? listenUrls)
    {
        if (target.StartsWith('/'))
        {
            var first = listenUrls?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
            if (first is null)
            {
                return null;
            }

            var loopback = first.Replace("://0.0.0.0", "://127.0.0.1", StringComparison.Ordinal)
                .Replace("://*", "://127.0.0.1", StringComparison.Ordinal)
                .Replace("://+", "://127.0.0.1", StringComparison.Ordinal)
                .Replace("://[::]", "://127.0.0.1", StringComparison.Ordinal);
            target = loopback.TrimEnd('/') + target;
        }

        return Uri.TryCreate(target, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps) ? uri : null;
    }
}
