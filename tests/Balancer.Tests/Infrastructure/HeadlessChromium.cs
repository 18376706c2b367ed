using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// A real headless Chromium (Debian's <c>/usr/bin/chromium</c>) driven over the DevTools protocol: one page,
/// JavaScript evaluated in it, screenshots. No driver download, no package: a process and a WebSocket.
/// </summary>
/// <remarks>
/// Playwright's NuGet package does carry its Node driver, but at 786 MB (Node for five platforms); the few
/// protocol calls these tests need are smaller than that dependency.
/// </remarks>
internal sealed class HeadlessChromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly string _userDataDirectory;
    private readonly ClientWebSocket _socket = new();
    private readonly ConcurrentDictionary<int, TaskCompletionSource<JsonObject>> _pending = new();
    private readonly ConcurrentQueue<string> _pageErrors = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private Task _receiving = Task.CompletedTask;
    private string _session = "";
    private int _nextId;

    private HeadlessChromium(Process process, string userDataDirectory)
    {
        _process = process;
        _userDataDirectory = userDataDirectory;
    }

    /// <summary>Uncaught exceptions and console errors the page raised, for tests to assert there were none.</summary>
    public IReadOnlyCollection<string> PageErrors => _pageErrors;

    public static async Task<HeadlessChromium> LaunchAsync(int width = 1280, int height = 800, bool mobile = false)
    {
        var userData = Directory.CreateTempSubdirectory("balancer-chromium-").FullName;
        var start = new ProcessStartInfo(ExecutablePath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--no-default-browser-check", "--disable-dev-shm-usage", "--hide-scrollbars",
            "--remote-debugging-port=0", $"--user-data-dir={userData}", $"--window-size={width},{height}", "about:blank",
        })
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"{ExecutablePath} did not start.");
        // Chromium logs freely to stderr; drain both pipes so it never blocks on a full one.
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var browser = new HeadlessChromium(process, userData);
        try
        {
            await browser.ConnectAsync();
            await browser.SendAsync("Emulation.setDeviceMetricsOverride", new JsonObject
            {
                ["width"] = width, ["height"] = height, ["deviceScaleFactor"] = 1, ["mobile"] = mobile,
            });
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    /// <summary>Opens <paramref name="url"/> and waits until the document has loaded.</summary>
    public async Task NavigateAsync(Uri url)
    {
        var result = await SendAsync("Page.navigate", new JsonObject { ["url"] = url.ToString() });
        if (result["errorText"] is { } error)
        {
            throw new InvalidOperationException($"Chromium could not open {url}: {error}");
        }

        await Poll.UntilAsync(async () => await EvaluateAsync<string>("document.readyState") == "complete", TimeSpan.FromSeconds(15), $"{url} to load");
    }

    /// <summary>Evaluates a JavaScript expression in the page and returns its JSON value.</summary>
    public async Task<T> EvaluateAsync<T>(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new JsonObject
        {
            ["expression"] = expression, ["returnByValue"] = true, ["awaitPromise"] = true,
        });
        if (result["exceptionDetails"] is { } exception)
        {
            throw new InvalidOperationException($"Evaluating `{expression}` threw: {exception.ToJsonString()}");
        }

        var value = result["result"]!["value"];
        return value is null ? default! : value.Deserialize<T>()!;
    }

    /// <summary>Polls a JavaScript condition until it is true, or fails with what the page last showed.</summary>
    public async Task WaitForAsync(string condition, TimeSpan timeout, string what, string? describe = null)
    {
        try
        {
            await Poll.UntilAsync(async () => await EvaluateAsync<bool>($"!!({condition})"), timeout, what);
        }
        catch (TimeoutException e) when (describe is not null)
        {
            throw new TimeoutException($"{e.Message} The page showed: {await EvaluateAsync<string>(describe)}", e);
        }
    }

    /// <summary>Presses and releases Enter as a keyboard would, on whatever element has the focus.</summary>
    public async Task PressEnterAsync()
    {
        await SendAsync("Input.dispatchKeyEvent", new JsonObject
        {
            ["type"] = "keyDown", ["key"] = "Enter", ["code"] = "Enter", ["windowsVirtualKeyCode"] = 13, ["text"] = "\r",
        });
        await SendAsync("Input.dispatchKeyEvent", new JsonObject
        {
            ["type"] = "keyUp", ["key"] = "Enter", ["code"] = "Enter", ["windowsVirtualKeyCode"] = 13,
        });
    }

    /// <summary>A PNG of the viewport.</summary>
    public async Task<byte[]> ScreenshotAsync()
    {
        var result = await SendAsync("Page.captureScreenshot", new JsonObject { ["format"] = "png" });
        return Convert.FromBase64String((string)result["data"]!);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var reaped = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(reaped.Token);
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            // Already gone, or not reaped in time: nothing more a test can do about it.
        }

        _socket.Dispose();
        try
        {
            await _receiving;
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
        }

        _process.Dispose();
        _stop.Dispose();
        _sendGate.Dispose();
        try
        {
            Directory.Delete(_userDataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A crash-reporter child may still hold a file for a moment; the temp directory is cleaned by the OS.
        }
    }

    private async Task ConnectAsync()
    {
        // Chromium writes the port it bound (line 1) and the browser endpoint path (line 2) once it listens.
        var portFile = Path.Combine(_userDataDirectory, "DevToolsActivePort");
        string[] lines = [];
        await Poll.UntilAsync(
            () =>
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"{ExecutablePath} exited with code {_process.ExitCode} before listening.");
                }

                lines = File.Exists(portFile) ? File.ReadAllLines(portFile) : [];
                return lines.Length >= 2;
            },
            TimeSpan.FromSeconds(30),
            "Chromium's DevTools port");
        await _socket.ConnectAsync(new Uri($"ws://127.0.0.1:{lines[0].Trim()}{lines[1].Trim()}"), _stop.Token);
        _receiving = Task.Run(ReceiveAsync);

        var target = await SendAsync("Target.createTarget", new JsonObject { ["url"] = "about:blank" }, session: false);
        var attached = await SendAsync("Target.attachToTarget", new JsonObject { ["targetId"] = (string)target["targetId"]!, ["flatten"] = true }, session: false);
        _session = (string)attached["sessionId"]!;
        await SendAsync("Page.enable", []);
        await SendAsync("Runtime.enable", []);
    }

    private async Task<JsonObject> SendAsync(string method, JsonObject parameters, bool session = true)
    {
        var id = Interlocked.Increment(ref _nextId);
        var reply = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters };
        if (session)
        {
            message["sessionId"] = _session;
        }

        await _sendGate.WaitAsync(_stop.Token);
        try
        {
            await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, endOfMessage: true, _stop.Token);
        }
        finally
        {
            _sendGate.Release();
        }

        return await reply.Task.WaitAsync(CommandTimeout, _stop.Token);
    }

    private async Task ReceiveAsync()
    {
        var buffer = new byte[64 * 1024];
        using var message = new MemoryStream();
        while (_socket.State == WebSocketState.Open)
        {
            var received = await _socket.ReceiveAsync(buffer, _stop.Token);
            if (received.MessageType == WebSocketMessageType.Close)
            {
                break;
            }

            message.Write(buffer, 0, received.Count);
            if (!received.EndOfMessage)
            {
                continue;
            }

            var json = JsonNode.Parse(message.GetBuffer().AsSpan(0, (int)message.Length))!.AsObject();
            message.SetLength(0);
            if (json["id"] is { } id && _pending.TryRemove(id.GetValue<int>(), out var reply))
            {
                if (json["error"] is { } error)
                {
                    reply.TrySetException(new InvalidOperationException($"DevTools error: {error.ToJsonString()}"));
                }
                else
                {
                    reply.TrySetResult(json["result"]?.AsObject() ?? []);
                }
            }
            else
            {
                RecordPageError(json);
            }
        }

        foreach (var pending in _pending.Values)
        {
            pending.TrySetException(new InvalidOperationException("Chromium closed the DevTools connection."));
        }
    }

    private void RecordPageError(JsonObject evt)
    {
        switch ((string?)evt["method"])
        {
            case "Runtime.exceptionThrown":
                _pageErrors.Enqueue(evt["params"]!["exceptionDetails"]!.ToJsonString());
                break;
            case "Runtime.consoleAPICalled" when (string?)evt["params"]!["type"] == "error":
                _pageErrors.Enqueue(evt["params"]!["args"]!.ToJsonString());
                break;
        }
    }
}
