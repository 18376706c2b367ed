using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// A real Prometheus (the Debian package's /usr/bin/prometheus) with its own temporary storage, listening
/// on a loopback port it chose itself (read back from its log). Killed on dispose.
/// </summary>
internal sealed partial class PrometheusServer : IAsyncDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("prometheus-test-").FullName;
    private readonly List<string> _log = [];
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private Process? _process;

    public Uri Address { get; private set; } = null!;

    /// <summary>Starts Prometheus on <paramref name="config"/> (JSON is YAML) and waits until it is ready.</summary>
    public static async Task<PrometheusServer> StartAsync(JsonNode config, TimeSpan timeout)
    {
        var server = new PrometheusServer();
        try
        {
            await server.StartCoreAsync(config, timeout);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>An instant query; each result series' labels and value.</summary>
    public async Task<List<(IReadOnlyDictionary<string, string> Labels, double Value)>> QueryAsync(string promql)
    {
        using var response = await _http.PostAsync(new Uri(Address, "/api/v1/query"), new FormUrlEncodedContent([new("query", promql)]));
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.True((string?)body["status"] == "success", $"Prometheus rejected {promql}: {body["error"]}");
        var data = body["data"]!;
        return (string?)data["resultType"] switch
        {
            "vector" => [.. data["result"]!.AsArray().Select(r => (
                (IReadOnlyDictionary<string, string>)r!["metric"]!.AsObject().ToDictionary(l => l.Key, l => (string)l.Value!),
                double.Parse((string)r["value"]![1]!, CultureInfo.InvariantCulture)))],
            "scalar" => [(new Dictionary<string, string>(), double.Parse((string)data["result"]![1]!, CultureInfo.InvariantCulture))],
            var type => throw new InvalidOperationException($"unexpected result type {type} for {promql}"),
        };
    }

    /// <summary>Values of a label as Prometheus knows them, as Grafana's <c>label_values(metric, label)</c> asks.</summary>
    public async Task<List<string>> LabelValuesAsync(string label, string match)
    {
        var body = JsonNode.Parse(await _http.GetStringAsync(new Uri(Address, $"/api/v1/label/{label}/values?match[]={Uri.EscapeDataString(match)}")))!;
        return [.. body["data"]!.AsArray().Select(v => (string)v!)];
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (_process is not null)
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }

            _process.Dispose();
        }

        Directory.Delete(_directory, recursive: true);
    }

    public override string ToString()
    {
        lock (_log)
        {
            return string.Join(Environment.NewLine, _log.TakeLast(30));
        }
    }

    private async Task StartCoreAsync(JsonNode config, TimeSpan timeout)
    {
        var configFile = Path.Combine(_directory, "prometheus.yml");
        await File.WriteAllTextAsync(configFile, config.ToJsonString());
        var start = new ProcessStartInfo("prometheus")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            "--config.file=" + configFile,
            "--storage.tsdb.path=" + Path.Combine(_directory, "data"),
            "--web.listen-address=127.0.0.1:0",
        })
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            _process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"prometheus could not be started ({e.Message}); ./test.sh installs the Debian package 'prometheus'.", e);
        }

        _process.OutputDataReceived += (_, e) => OnLog(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLog(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            Address = await _listening.Task.WaitAsync(deadline.Token);
            await Poll.UntilAsync(ReadyAsync, timeout, "Prometheus to answer /-/ready");
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException)
        {
            throw new TimeoutException($"Prometheus was not ready within {timeout.TotalSeconds:0} s; its log:{Environment.NewLine}{this}", e);
        }
    }

    private async Task<bool> ReadyAsync()
    {
        if (_process!.HasExited)
        {
            throw new InvalidOperationException($"Prometheus exited with {_process.ExitCode}; its log:{Environment.NewLine}{this}");
        }

        try
        {
            using var response = await _http.GetAsync(new Uri(Address, "/-/ready"));
            return response.IsSuccessStatusCode;
        }
        catch (HttpRequestException)
        {
            return false;
        }
    }

    private void OnLog(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.Add(line);
        }

        // Both log formats (Prometheus 2's and 3's) write the bound address as: msg="Listening on" address=127.0.0.1:PORT
        if (ListeningOn().Match(line) is { Success: true } match)
        {
            _listening.TrySetResult(new Uri($"http://{match.Groups[1].Value}/"));
        }
    }

    [GeneratedRegex(@"msg=""Listening on"".*\baddress=(127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
