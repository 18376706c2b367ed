using System.Diagnostics;
using System.Net;
using Balancer.Tests.Health;
using Balancer.Tests.Infrastructure;
using Balancer.Tests.Integration;
using Microsoft.AspNetCore.Hosting;
using Xunit.Abstractions;

namespace Balancer.Tests.Management;

[Collection(IntegrationCollection.Name)]
public sealed class StatusPageTests(ITestOutputHelper output)
{
    /// <summary>What the page shows per destination, e.g. "A=UP,B=DOWN,C=UP": for assertions and timeout messages.</summary>
    private const string Badges =
        "[...document.querySelectorAll('tr[data-destination]')].map(r => r.dataset.destination + '=' + r.querySelector('.badge').textContent).join(',')";

    private const string Policy = "document.querySelector('section.cluster .policy strong')?.textContent";

    private const string Reload = "document.getElementById('reload-result').textContent + ' | ' + document.getElementById('reload-error').textContent";

    [Theory]
    [InlineData("/")]
    [InlineData("/index.html")]
    public async Task Page_OnManagementListener_IsSelfContainedReadOnlyHtml(string path)
    {
        await using var lb = await BalancerFixture.StartAsync();

        using var response = await lb.Management.GetAsync(path);
        var html = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal("no-store", response.Headers.CacheControl!.ToString());
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("connect-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("script-src 'sha256-", csp, StringComparison.Ordinal);
        // Works offline: nothing loaded from elsewhere; read-only: nothing to submit (its only buttons, made by the
        // script, open a row or turn a page; its only input and select filter what it reads).
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", html);
        Assert.DoesNotContain("<form", html, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("<button", html, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(
            ["input filter-name search", "select filter-state "],
            System.Text.RegularExpressions.Regex.Matches(html, "<(input|select) id=\"([^\"]+)\"(?:[^>]*type=\"([a-z]+)\")?").Select(m => $"{m.Groups[1]} {m.Groups[2]} {m.Groups[3]}"));
        Assert.DoesNotContain("EventSource", html, StringComparison.Ordinal);
        Assert.DoesNotContain("WebSocket", html, StringComparison.Ordinal);
        Assert.Contains("fetch(`status?${query()}`", html, StringComparison.Ordinal);
        Assert.False(response.Headers.Contains("X-Backend"));
    }

    [Fact]
    public async Task Page_OnManagementListener_HeadHasNoBody_PostIsRefused()
    {
        await using var lb = await BalancerFixture.StartAsync();

        using var head = await lb.Management.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/"));
        using var post = await lb.Management.PostAsync("/", new StringContent("x"));

        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.True(head.Content.Headers.ContentLength > 1000);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        Assert.Equal(HttpStatusCode.MethodNotAllowed, post.StatusCode);
        Assert.Equal(["GET", "HEAD"], post.Content.Headers.Allow);
    }

    [Fact]
    public async Task Page_OnProxyListener_IsNotServed_BackendAnswers()
    {
        await using var lb = await BalancerFixture.StartAsync();

        using var response = await lb.Client.GetAsync("/");
        var body = await response.Content.ReadAsStringAsync();

        Assert.True(response.Headers.Contains("X-Backend"));
        Assert.DoesNotContain("Balancer status", body, StringComparison.Ordinal);
        Assert.Contains("\"backend\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Page_InChromium_ShowsRequestsRefusedByThePerClientLimits_OnlyOnceThereAreAny()
    {
        const string Limited = "document.querySelector('section.cluster .policy .limited')?.textContent ?? '(missing)'";
        await using var lb = await BalancerFixture.StartAsync(edit: c => c["Balancer"]!["RateLimit"] = new System.Text.Json.Nodes.JsonObject { ["RequestsPerSecond"] = 0.01, ["Burst"] = 1 });
        await using var browser = await HeadlessChromium.LaunchAsync();
        await browser.NavigateAsync(lb.ManagementAddress);
        await browser.WaitForAsync($"{Policy} === 'RoundRobin'", TimeSpan.FromSeconds(10), "the cluster shown", Policy);
        Assert.Equal("", await browser.EvaluateAsync<string>(Limited));

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await lb.Client.GetAsync("/");
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests, HttpStatusCode.TooManyRequests], statuses);
        await browser.WaitForAsync($"{Limited}.includes('rate limited (429): 3')", TimeSpan.FromSeconds(10), "the three refusals shown", Limited);
        Assert.Empty(browser.PageErrors);
    }

    [Fact]
    public async Task Page_InChromium_ShowsUp_ThenKilledBackendDownWithin5s_ThenRejectedReloadError()
    {
        await using var lb = await BalancerFixture.StartAsync("LeastConnections", HealthTestConfig.ActiveAndPassive());
        await HealthTestConfig.WaitAllUpAsync(lb);
        // A steady trickle (not a flood that would starve the browser on a 2-core machine) feeds the charts.
        await using var traffic = PacedTraffic.Start(lb.Client, TimeSpan.FromMilliseconds(20));
        await using var browser = await HeadlessChromium.LaunchAsync();

        await browser.NavigateAsync(lb.ManagementAddress);
        await browser.WaitForAsync($"{Badges} === 'A=UP,B=UP,C=UP'", TimeSpan.FromSeconds(10), "A, B and C shown UP", Badges);
        Assert.Equal("LeastConnections", await browser.EvaluateAsync<string>(Policy));
        // A reload would drop this; the page must update in place.
        await browser.EvaluateAsync<bool>("window.__sameDocument = true");

        var killed = Stopwatch.StartNew();
        await lb.Backend("B").KillAsync();
        await browser.WaitForAsync($"{Badges} === 'A=UP,B=DOWN,C=UP'", TimeSpan.FromSeconds(5), "B shown DOWN", Badges);
        killed.Stop();
        Assert.True(await browser.EvaluateAsync<bool>("window.__sameDocument === true"), "the page reloaded itself");
        // The change shows its reason, and is announced to screen readers.
        Assert.Contains("Up \u2192 Down", await browser.EvaluateAsync<string>("document.querySelector('tr[data-destination=\"B\"] td.change').textContent"), StringComparison.Ordinal);
        await browser.WaitForAsync("document.getElementById('announcer').textContent.includes('B in backends is now DOWN')", TimeSpan.FromSeconds(5), "the DOWN announcement", "document.getElementById('announcer').textContent");

        lb.WriteConfig(lb.Config("NoSuchPolicy", HealthTestConfig.ActiveAndPassive()));
        await browser.WaitForAsync(
            "document.getElementById('reload-result').textContent.startsWith('Rejected') && !document.getElementById('reload-error').hidden " +
            "&& document.getElementById('reload-error').textContent.includes(\"unknown policy 'NoSuchPolicy'\")",
            TimeSpan.FromSeconds(10),
            "the rejected reload and its error",
            Reload);
        Assert.Contains("ReverseProxy:Clusters:backends:LoadBalancingPolicy", await browser.EvaluateAsync<string>("document.getElementById('reload-error').textContent"), StringComparison.Ordinal);
        Assert.Equal("LeastConnections", await browser.EvaluateAsync<string>(Policy));
        Assert.True(await browser.EvaluateAsync<bool>("window.__sameDocument === true"), "the page reloaded itself");

        // An operator drains C and gives A the weight 3: the page shows the state beside the health, and the
        // weight in force beside the file's.
        using (await lb.Management.PostAsync("/api/destinations/backends/C/drain", null))
        using (await lb.Management.PutAsync("/api/destinations/backends/A/weight", new StringContent("3")))
        {
        }

        await browser.WaitForAsync(
            "document.querySelector('tr[data-destination=\"C\"] .badge.state').textContent === 'DRAINED' " +
            "&& document.querySelector('tr[data-destination=\"A\"] .badge.state').hidden " +
            "&& document.querySelector('tr[data-destination=\"A\"] td:nth-of-type(2)').textContent === '3file 1, override'",
            TimeSpan.FromSeconds(10),
            "C shown DRAINED and A's weight 3 beside the file's 1",
            "[...document.querySelectorAll('tr[data-destination]')].map(r => r.dataset.destination + ':' + r.dataset.state + ':' + r.querySelector('td:nth-of-type(2)').textContent).join(',')");
        Assert.Equal("A=UP,B=DOWN,C=UP", await browser.EvaluateAsync<string>(Badges));

        // Enough points for the charts to show something before the picture is taken.
        await browser.WaitForAsync("document.querySelector('svg.spark polyline').getAttribute('points').split(' ').length >= 8", TimeSpan.FromSeconds(15), "8 chart points");
        var screenshot = await browser.ScreenshotAsync();
        output.WriteLine($"screenshot: {await Screenshots.SaveAsync("status-page.png", screenshot)}");

        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], screenshot[..4]);
        Assert.Empty(browser.PageErrors);
        output.WriteLine($"status page showed B DOWN {killed.ElapsedMilliseconds} ms after it was killed");
    }

    [Fact]
    public async Task Page_InChromium_ChartFilledFromServerHistoryAtLoad_OpenedRowShowsProbesEventsAndFlaps()
    {
        const string Charts = "[...document.querySelectorAll('tr[data-destination]')].map(r => r.dataset.destination + ':' + " +
            "r.querySelector('svg.spark polyline').getAttribute('points').split(' ').filter(Boolean).length + ':' + " +
            "(r.querySelector('svg.spark').dataset.values || '').split(',').filter(Boolean).reduce((a, v) => a + Number(v), 0)).join(',')";
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", HealthTestConfig.ActiveAndPassive());
        await HealthTestConfig.WaitAllUpAsync(lb);
        await using var browser = await HeadlessChromium.LaunchAsync();
        var counts = await lb.CountsAsync(30);
        Assert.Equal([10, 10, 10], counts);
        // Once the second of those requests is over, the server's history holds them.
        await Poll.UntilAsync(
            async () => (await lb.StatusAsync())["clusters"]![0]!["destinations"]!.AsArray().All(d => d!["requestRateHistory"]!.AsArray().Sum(n => (long)n!) == 10),
            TimeSpan.FromSeconds(5),
            "10 requests per destination in the server's history");
        await lb.Backend("B").KillAsync();
        await HealthTestConfig.WaitForHealthAsync(lb, "B", "Down", TimeSpan.FromSeconds(10));

        var opened = Stopwatch.StartNew();
        await browser.NavigateAsync(lb.ManagementAddress);
        // A chart built up in the browser would have one point a second; this one has the whole minute at once.
        await browser.WaitForAsync("document.querySelectorAll('tr[data-destination]').length === 3", TimeSpan.FromSeconds(10), "the destinations listed");
        await browser.WaitForAsync($"{Charts} === 'A:60:10,B:60:10,C:60:10'", TimeSpan.FromSeconds(2), "60 chart points holding the 10 requests of each destination", Charts);
        output.WriteLine($"charts full {opened.ElapsedMilliseconds} ms after navigation started");

        // Clicking B's row opens its details: the failed probes with their error, and its one flap (Up -> Down).
        const string BDetails = "document.getElementById(document.querySelector('tr[data-destination=\"B\"] button.open').getAttribute('aria-controls'))";
        Assert.Equal("false", await browser.EvaluateAsync<string>("document.querySelector('tr[data-destination=\"B\"] button.open').getAttribute('aria-expanded')"));
        await browser.EvaluateAsync<bool>("document.querySelector('tr[data-destination=\"B\"] td.num').click() === undefined");
        await browser.WaitForAsync($"{BDetails}?.querySelector('ol.probes li') != null", TimeSpan.FromSeconds(5), "B's probe list");
        Assert.Equal("true", await browser.EvaluateAsync<string>("document.querySelector('tr[data-destination=\"B\"] button.open').getAttribute('aria-expanded')"));
        Assert.True("1" == await browser.EvaluateAsync<string>($"{BDetails}.querySelector('.flap-count').textContent"), await browser.EvaluateAsync<string>($"{BDetails}.textContent"));
        var newest = await browser.EvaluateAsync<string>($"{BDetails}.querySelector('ol.probes li').textContent");
        Assert.Contains("Failure", newest, StringComparison.Ordinal);
        // A probe out on a kept-alive connection when B died fails "reset"; one sent after, "refused".
        Assert.Matches("refused|reset", newest);
        Assert.Contains("No passive health event", await browser.EvaluateAsync<string>($"{BDetails}.querySelector('.event-section').textContent"), StringComparison.Ordinal);
        // The details row follows B's row and stays open as the page refreshes, showing each new probe.
        var newestTime = await browser.EvaluateAsync<string>($"{BDetails}.querySelector('ol.probes li time').dateTime");
        await browser.WaitForAsync($"{BDetails}?.querySelector('ol.probes li time').dateTime !== '{newestTime}'", TimeSpan.FromSeconds(5), "a newer probe of B in the open details");
        Assert.True(await browser.EvaluateAsync<bool>($"document.querySelector('tr[data-destination=\"B\"]').nextElementSibling === {BDetails}"));

        await Screenshots.SaveAsync("status-page-details.png", await browser.ScreenshotAsync());

        // The keyboard opens A: its button takes the focus, Enter opens it.
        const string ADetails = "document.getElementById(document.querySelector('tr[data-destination=\"A\"] button.open').getAttribute('aria-controls'))";
        await browser.EvaluateAsync<bool>("document.querySelector('tr[data-destination=\"A\"] button.open').focus() === undefined");
        await browser.PressEnterAsync();
        await browser.WaitForAsync($"{ADetails}?.querySelector('ol.probes li') != null", TimeSpan.FromSeconds(5), "A's probe list");
        var a = await browser.EvaluateAsync<string>($"{ADetails}.querySelector('ol.probes li').textContent");
        Assert.Contains("Success", a, StringComparison.Ordinal);
        Assert.Contains("HTTP 200", a, StringComparison.Ordinal);
        Assert.Equal("0", await browser.EvaluateAsync<string>($"{ADetails}.querySelector('.flap-count').textContent"));

        // Enter again closes it.
        await browser.PressEnterAsync();
        await browser.WaitForAsync($"{ADetails} === null", TimeSpan.FromSeconds(5), "A's details closed");
        Assert.Equal("false", await browser.EvaluateAsync<string>("document.querySelector('tr[data-destination=\"A\"] button.open').getAttribute('aria-expanded')"));
        Assert.Empty(browser.PageErrors);
    }

    [Fact]
    public async Task Page_InChromium_1000Destinations_ShowsPagesOf100_FiltersByStateAndName_DoesNotReinsertRowsEachPoll()
    {
        const string Rows = "[...document.querySelectorAll('tr[data-destination]')].map(r => r.dataset.destination).join(',')";
        const string Shown = "document.querySelector('section.cluster .pager .shown').textContent";
        await using var lb = await LargeCluster.StartAsync();
        await LargeCluster.WaitForDeadDownAsync(lb);
        await using var browser = await HeadlessChromium.LaunchAsync();

        await browser.NavigateAsync(lb.ManagementAddress);
        await browser.WaitForAsync($"{Shown} === 'Showing 1\u2013100 of 1,000'", TimeSpan.FromSeconds(10), "the first page of 100", Shown);
        Assert.Equal(string.Join(',', Enumerable.Range(0, 100).Select(i => $"d{i:0000}")), await browser.EvaluateAsync<string>(Rows));

        // Polls keep coming (probe times change every second), yet rows already shown are updated in place, not re-inserted.
        await browser.EvaluateAsync<bool>(
            "(window.__moves = 0, window.__polls = 0, new MutationObserver(m => window.__moves += m.length).observe(document.querySelector('section.cluster tbody'), { childList: true })," +
            " new MutationObserver(() => window.__polls++).observe(document.getElementById('updated'), { childList: true, characterData: true, subtree: true }), true)");
        await browser.WaitForAsync("window.__polls >= 3", TimeSpan.FromSeconds(15), "three polls");
        Assert.Equal(0, await browser.EvaluateAsync<int>("window.__moves"));

        await browser.EvaluateAsync<bool>("document.querySelector('section.cluster button.next').click() === undefined");
        await browser.WaitForAsync($"{Shown} === 'Showing 101\u2013200 of 1,000'", TimeSpan.FromSeconds(10), "the second page", Shown);
        Assert.StartsWith("d0100,d0101,", await browser.EvaluateAsync<string>(Rows), StringComparison.Ordinal);

        await browser.EvaluateAsync<bool>("(document.getElementById('filter-state').value = 'Down', document.getElementById('filter-state').dispatchEvent(new Event('change')), true)");
        await browser.WaitForAsync($"{Rows} === '{string.Join(',', LargeCluster.DeadIds)}'", TimeSpan.FromSeconds(10), "the ten Down destinations", Rows);
        Assert.Equal("Showing 1\u201310 of 10 (10 of 1,000 match the filter)", await browser.EvaluateAsync<string>(Shown));
        Assert.Equal(Enumerable.Repeat("DOWN", 10), await browser.EvaluateAsync<string[]>("[...document.querySelectorAll('tr[data-destination] .badge:not(.state)')].map(b => b.textContent)"));
        Assert.Equal("?state=Down", await browser.EvaluateAsync<string>("location.search"));

        await browser.EvaluateAsync<bool>("(document.getElementById('filter-name').value = 'd05', document.getElementById('filter-name').dispatchEvent(new Event('input')), true)");
        await browser.WaitForAsync($"{Rows} === 'd0507'", TimeSpan.FromSeconds(10), "only d0507", Rows);

        await browser.EvaluateAsync<bool>("(document.getElementById('filter-state').value = '', document.getElementById('filter-state').dispatchEvent(new Event('change')), true)");
        await browser.WaitForAsync($"{Shown} === 'Showing 1\u2013100 of 100 (100 of 1,000 match the filter)'", TimeSpan.FromSeconds(10), "the hundred d05xx", Shown);
        Assert.Equal(string.Join(',', Enumerable.Range(500, 100).Select(i => $"d{i:0000}")), await browser.EvaluateAsync<string>(Rows));

        // The filter in the page's address is applied at load: an operator can share the view.
        await browser.NavigateAsync(new Uri(lb.ManagementAddress, "/?state=Down&name=d09"));
        await browser.WaitForAsync($"{Rows} === 'd0907'", TimeSpan.FromSeconds(10), "d0907 from the address's filter", Rows);
        Assert.Empty(browser.PageErrors);
    }

    [Fact]
    public async Task Page_InChromium_StatusUnreachable_ShowsBanner_ThenRecovers()
    {
        var outage = new StatusOutage();
        await using var lb = await BalancerFixture.StartAsync("RoundRobin", configure: b => b.Services.AddSingleton<IStartupFilter>(outage));
        await using var browser = await HeadlessChromium.LaunchAsync();
        const string Banner = "document.getElementById('banner').hidden ? '(no banner)' : document.getElementById('banner').textContent";

        await browser.NavigateAsync(lb.ManagementAddress);
        await browser.WaitForAsync("document.querySelectorAll('tr[data-destination]').length === 3", TimeSpan.FromSeconds(10), "the destinations listed");
        Assert.True(await browser.EvaluateAsync<bool>("document.getElementById('banner').hidden"));

        outage.Down = true;
        await browser.WaitForAsync("!document.getElementById('banner').hidden", TimeSpan.FromSeconds(10), "the unreachable banner", Banner);
        Assert.StartsWith("Balancer unreachable", await browser.EvaluateAsync<string>(Banner), StringComparison.Ordinal);
        Assert.Equal("Disconnected", await browser.EvaluateAsync<string>("document.getElementById('updated').textContent"));
        Assert.True(await browser.EvaluateAsync<bool>("document.getElementById('main').classList.contains('stale')"), "figures not marked stale");

        outage.Down = false;
        await browser.WaitForAsync("document.getElementById('banner').hidden", TimeSpan.FromSeconds(10), "the banner to go once /status answers again", Banner);
        Assert.StartsWith("Live", await browser.EvaluateAsync<string>("document.getElementById('updated').textContent"), StringComparison.Ordinal);
        Assert.False(await browser.EvaluateAsync<bool>("document.getElementById('main').classList.contains('stale')"), "figures still marked stale");
        Assert.Equal(3, await browser.EvaluateAsync<int>("document.querySelectorAll('tr[data-destination]').length"));
    }

    [Fact]
    public async Task Page_InChromium_ShowsMarkupInAReloadErrorAsText_NeverRunsIt()
    {
        await using var lb = await BalancerFixture.StartAsync("RoundRobin");
        await using var browser = await HeadlessChromium.LaunchAsync();
        await browser.NavigateAsync(lb.ManagementAddress);
        await browser.WaitForAsync("document.querySelectorAll('tr[data-destination]').length === 3", TimeSpan.FromSeconds(10), "the destinations listed");

        // The rejected name comes back inside the error message the page displays.
        const string Hostile = "<img src=x onerror=\"window.__injected=1\">";
        lb.WriteConfig(Hostile);
        await browser.WaitForAsync("!document.getElementById('reload-error').hidden", TimeSpan.FromSeconds(10), "the rejected reload", Reload);

        Assert.Contains(Hostile, await browser.EvaluateAsync<string>("document.getElementById('reload-error').textContent"), StringComparison.Ordinal);
        Assert.Equal(0, await browser.EvaluateAsync<int>("document.querySelectorAll('img').length"));
        Assert.False(await browser.EvaluateAsync<bool>("window.__injected === 1"));
    }

    [Fact]
    public async Task Page_InChromium_OnPhoneWidth_FitsTheScreen_AndIsAccessible()
    {
        await using var lb = await BalancerFixture.StartAsync("IpHash", HealthTestConfig.ActiveAndPassive());
        await HealthTestConfig.WaitAllUpAsync(lb);
        await using var browser = await HeadlessChromium.LaunchAsync(width: 390, height: 844, mobile: true);

        await browser.NavigateAsync(lb.ManagementAddress);
        await browser.WaitForAsync($"{Badges} === 'A=UP,B=UP,C=UP'", TimeSpan.FromSeconds(10), "A, B and C shown UP", Badges);

        // No sideways scrolling on a phone.
        Assert.True(
            await browser.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"),
            await browser.EvaluateAsync<string>("`scrollWidth ${document.documentElement.scrollWidth} > innerWidth ${window.innerWidth}`"));
        // A semantic table: column headers and row headers are scoped, and there is a caption.
        Assert.Equal(10, await browser.EvaluateAsync<int>("document.querySelectorAll('#clusters thead th[scope=col]').length"));
        Assert.Equal(3, await browser.EvaluateAsync<int>("document.querySelectorAll('#clusters tbody th[scope=row]').length"));
        Assert.Equal(1, await browser.EvaluateAsync<int>("document.querySelectorAll('#clusters table caption').length"));
        Assert.Equal("polite", await browser.EvaluateAsync<string>("document.getElementById('announcer').getAttribute('aria-live')"));
        // Only the announcer and the outage banner speak: nothing re-announces the figures every second.
        Assert.Equal("announcer,banner", await browser.EvaluateAsync<string>("[...document.querySelectorAll('[aria-live],[role=status],[role=alert]')].map(e => e.id).sort().join(',')"));
        Assert.Equal(3, await browser.EvaluateAsync<int>("document.querySelectorAll('svg.spark[role=img][aria-label]').length"));
        // Badges say UP in words and their colours meet WCAG AA contrast (4.5:1) for their text.
        var contrasts = await browser.EvaluateAsync<double[]>(ContrastOfBadges);
        Assert.Equal(3, contrasts.Length);
        Assert.All(contrasts, ratio => Assert.True(ratio >= 4.5, $"badge contrast {ratio:0.00}:1"));
        Assert.Empty(browser.PageErrors);
        await Screenshots.SaveAsync("status-page-phone.png", await browser.ScreenshotAsync());

        // A destination's details, opened, fit the phone too.
        await browser.EvaluateAsync<bool>("document.querySelector('tr[data-destination=\"A\"] button.open').click() === undefined");
        await browser.WaitForAsync("document.querySelector('tr.details ol.probes li') != null", TimeSpan.FromSeconds(5), "A's probe list");
        Assert.True(
            await browser.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"),
            await browser.EvaluateAsync<string>("`scrollWidth ${document.documentElement.scrollWidth} > innerWidth ${window.innerWidth}`"));
        Assert.Empty(browser.PageErrors);
    }

    private const string ContrastOfBadges = """
        (() => {
          const rgb = s => s.match(/[\d.]+/g).slice(0, 3).map(Number);
          const lum = c => { const [r, g, b] = c.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
          return [...document.querySelectorAll('.badge:not([hidden])')].map(b => {
            const s = getComputedStyle(b); const [l1, l2] = [lum(rgb(s.color)), lum(rgb(s.backgroundColor))].sort((x, y) => y - x);
            return (l1 + 0.05) / (l2 + 0.05);
          });
        })()
        """;

    /// <summary>Cuts the management listener's <c>/status</c> connections while <see cref="Down"/>, like a network outage.</summary>
    private sealed class StatusOutage : IStartupFilter
    {
        private volatile bool _down;

        public bool Down
        {
            get => _down;
            set => _down = value;
        }

        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                if (Down && context.Request.Path == "/status")
                {
                    context.Abort();
                    return Task.CompletedTask;
                }

                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
