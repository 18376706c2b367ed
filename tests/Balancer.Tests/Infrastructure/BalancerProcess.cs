using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Balancer.Tests.Deployment;

namespace Balancer.Tests.Infrastructure;

/// <summary>
/// The built balancer run as its own process (<c>dotnet src/Balancer/bin/CONFIG/net10.0/Balancer.dll ...</c>),
/// exactly as an operator or a service manager starts it: for exit codes and signals.
/// </summary>
internal sealed partial class BalancerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private BalancerProcess(Process process) => _process = process;

    /// <summary>The Balancer.dll built beside this test assembly's configuration (Release under ./test.sh).</summary>
    public static string Dll
    {
        get
        {
            var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
            var path = Repo.PathOf($"src/Balancer/bin/{configuration}/net10.0/Balancer.dll");
            return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing; build the solution first (./test.sh does).", path);
        }
    }

    /// <summary>
    /// How the balancer is started: <c>dotnet Balancer.dll</c>, or the executable <c>BALANCER_EXECUTABLE</c> names
    /// (a Native AOT build from deploy/aot/publish.sh), so the process-level tests can be run against that build.
    /// </summary>
    public static IReadOnlyList<string> Command =>
        Environment.GetEnvironmentVariable(ExecutableVariable) is { Length: > 0 } executable
            ? [File.Exists(executable) ? Path.GetFullPath(executable) : throw new FileNotFoundException($"{ExecutableVariable}={executable} does not exist.", executable)]
            : ["dotnet", Dll];

    public const string ExecutableVariable = "BALANCER_EXECUTABLE";

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Everything the process wrote to stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public static BalancerProcess Start(params string[] args) => Start(args, null);

    /// <summary>
    /// Starts the balancer through <paramref name="launcher"/> when given (e.g. <c>prlimit --nofile=N:N</c>,
    /// which execs it, so the process id stays the balancer's).
    /// </summary>
    public static BalancerProcess Start(string[] args, IReadOnlyDictionary<string, string>? environment, IReadOnlyList<string>? launcher = null)
    {
        var command = Command;
        var start = new ProcessStartInfo(launcher is { Count: > 0 } ? launcher[0] : command[0])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (launcher is { Count: > 0 })
        {
            foreach (var arg in launcher.Skip(1))
            {
                start.ArgumentList.Add(arg);
            }

            start.ArgumentList.Add(command[0]);
        }

        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        // A developer's shell must not change what the process does.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("Balancer__", StringComparison.OrdinalIgnoreCase) || k == "BALANCER_CONFIG").ToList())
        {
            start.Environment.Remove(name);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var balancer = new BalancerProcess(process);
        process.OutputDataReceived += (_, e) => balancer.Append(e.Data);
        process.ErrorDataReceived += (_, e) => balancer.Append(e.Data);
        process.Exited += (_, _) => balancer._exited.TrySetResult();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return balancer;
    }

    /// <summary>Waits for the process to exit; its exit code, or a timeout naming what it printed.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _exited.Task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"The balancer did not exit within {timeout.TotalSeconds:0.#} s. Output:{Environment.NewLine}{Output}");
        }

        // The last lines may still be on their way from the pipes.
        await _process.WaitForExitAsync();
        return _process.ExitCode;
    }

    /// <summary>
    /// The proxy and management addresses once both are listening, told apart by what they answer: only
    /// the management listener says "ok" to /healthz (the proxy forwards it to a backend).
    /// </summary>
    public async Task<(Uri Proxy, Uri Management)> ListenersAsync(TimeSpan timeout)
    {
        List<Uri> addresses = [];
        await Poll.UntilAsync(
            () =>
            {
                if (_process.HasExited)
                {
                    throw new InvalidOperationException($"The balancer exited with {_process.ExitCode}:{Environment.NewLine}{Output}");
                }

                // A listener on every interface is logged as [::] or 0.0.0.0; it is reached on loopback.
                addresses = [.. Listening().Matches(Output).Select(m => new Uri(m.Groups[1].Value.Trim().Replace("[::]", "127.0.0.1", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal) + "/"))];
                return addresses.Count >= 2;
            },
            timeout,
            "the balancer's two listeners");
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        foreach (var address in addresses)
        {
            using var response = await client.GetAsync(new Uri(address, "/healthz"));
            if (!response.Headers.Contains("X-Backend") && await response.Content.ReadAsStringAsync() == "ok\n")
            {
                return (addresses.Single(a => a != address), address);
            }
        }

        throw new InvalidOperationException($"No management listener among {string.Join(", ", addresses)}");
    }

    /// <summary>Sends a signal (TERM, INT, KILL) to the process, as a service manager does.</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
        if (kill.ExitCode != 0)
        {
            throw new InvalidOperationException($"kill -{signal} {_process.Id} failed with {kill.ExitCode}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    [GeneratedRegex(@"Now listening on: (http://\S+)")]
    private static partial Regex Listening();
}
