using System.Collections.Concurrent;
using PuppeteerSharp;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// A real headless Chromium (Debian's <c>/usr/bin/chromium</c>) driven by PuppeteerSharp: one page, JavaScript
/// evaluated in it, screenshots. PuppeteerSharp is told where the browser is, so it never downloads one.
/// </summary>
internal sealed class HeadlessChromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private static readonly string[] Flags =
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage", "--hide-scrollbars",
    ];

    private readonly IBrowser _browser;
    private readonly IPage _page;
    private readonly string _userDataDirectory;
    private readonly ConcurrentQueue<string> _pageErrors = new();

    private HeadlessChromium(IBrowser browser, IPage page, string userDataDirectory)
    {
        _browser = browser;
        _page = page;
        _userDataDirectory = userDataDirectory;
        _page.PageError += (_, e) => _pageErrors.Enqueue(e.Message);
        _page.Console += (_, e) =>
        {
            // The page's own console.error calls; not the browser's network log (a favicon's 404), which has no arguments.
            if (e.Message.Type == ConsoleType.Error && e.Message.Args is { Count: > 0 })
            {
                _pageErrors.Enqueue(e.Message.Text);
            }
        };
    }

    /// <summary>Uncaught exceptions and console errors the page raised, for tests to assert there were none.</summary>
    public IReadOnlyCollection<string> PageErrors => _pageErrors;

    public static async Task<HeadlessChromium> LaunchAsync(int width = 1280, int height = 800, bool mobile = false)
    {
        // A fresh profile per browser: nothing carries over between tests, and nothing is left in the tree.
        var userData = Directory.CreateTempSubdirectory("balancer-chromium-").FullName;
        IBrowser? browser = null;
        try
        {
            browser = await Puppeteer.LaunchAsync(new LaunchOptions
            {
                ExecutablePath = ExecutablePath,
                Headless = true,
                UserDataDir = userData,
                Args = Flags,
                DefaultViewport = new ViewPortOptions { Width = width, Height = height, IsMobile = mobile, DeviceScaleFactor = 1 },
                Timeout = 30_000,
            });
            var pages = await browser.PagesAsync();
            var page = pages.Length > 0 ? pages[0] : await browser.NewPageAsync();
            page.DefaultTimeout = 30_000;
            return new HeadlessChromium(browser, page, userData);
        }
        catch
        {
            if (browser is not null)
            {
                await browser.DisposeAsync();
            }

            DeleteProfile(userData);
            throw;
        }
    }

    /// <summary>Opens <paramref name="url"/> and waits until the document has loaded.</summary>
    public async Task NavigateAsync(Uri url)
    {
        var response = await _page.GoToAsync(url.ToString(), new NavigationOptions { WaitUntil = [WaitUntilNavigation.Load], Timeout = 30_000 });
        if (response is { Ok: false })
        {
            throw new InvalidOperationException($"Chromium opened {url} with status {(int)response.Status}.");
        }
    }

    /// <summary>Evaluates a JavaScript expression in the page and returns its JSON value.</summary>
    public Task<T> EvaluateAsync<T>(string expression) => _page.EvaluateExpressionAsync<T>(expression);

    /// <summary>Polls a JavaScript condition until it is true, or fails with what the page last showed.</summary>
    public async Task WaitForAsync(string condition, TimeSpan timeout, string what, string? describe = null)
    {
        try
        {
            // A condition that throws (an element not rendered yet) counts as not yet true.
            await Poll.UntilAsync(async () => await EvaluateAsync<bool>($"(() => {{ try {{ return !!({condition}); }} catch {{ return false; }} }})()"), timeout, what);
        }
        catch (TimeoutException e) when (describe is not null)
        {
            throw new TimeoutException($"{e.Message} The page showed: {await EvaluateAsync<string>($"(() => {{ try {{ return String({describe}); }} catch (x) {{ return String(x); }} }})()")}", e);
        }
    }

    /// <summary>Presses and releases Enter as a keyboard would, on whatever element has the focus.</summary>
    public Task PressEnterAsync() => _page.Keyboard.PressAsync("Enter");

    /// <summary>A PNG of the viewport.</summary>
    public Task<byte[]> ScreenshotAsync() => _page.ScreenshotDataAsync(new ScreenshotOptions { Type = ScreenshotType.Png });

    public async ValueTask DisposeAsync()
    {
        await _browser.DisposeAsync();
        DeleteProfile(_userDataDirectory);
    }

    private static void DeleteProfile(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // A crash-reporter child may still hold a file for a moment; the temp directory is cleaned by the OS.
        }
    }
}
