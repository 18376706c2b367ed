using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Balancer.Tests.HighAvailability;

/// <summary>
/// A private network made of Linux network namespaces: one namespace holds a bridge, every other one (a
/// "host") is wired to it by a veth pair and gets one address. Nothing is added to the namespace the tests
/// run in. Namespaces are named <c>lbha&lt;test process id&gt;-&lt;lab&gt;-&lt;host&gt;</c>, so that leftovers of a test
/// run that died can be recognised and removed by the next one, and labs of tests running at once do not collide.
/// </summary>
internal sealed class NetworkLab : IAsyncDisposable
{
    private const string Prefix = "lbha";
    private readonly string _switch;
    private readonly List<string> _namespaces = [];
    private readonly List<LabProcess> _processes = [];
    private readonly string _lab = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(3)).ToLowerInvariant();

    private NetworkLab()
    {
        _switch = NamespaceOf("sw");
    }

    /// <summary>Why namespaces cannot be made here, or null when they can (root, or CAP_SYS_ADMIN and CAP_NET_ADMIN).</summary>
    public static string? Unavailable()
    {
        if (!File.Exists("/proc/self/ns/net"))
        {
            return "this kernel has no network namespaces";
        }

        var probe = $"{Prefix}probe{Environment.ProcessId}";
        (int ExitCode, string Output, string Error) added;
        try
        {
            added = Ip(["netns", "add", probe], throwOnError: false);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "'ip' is not installed (Debian package iproute2)";
        }

        if (added.ExitCode != 0)
        {
            return $"'ip netns add' is not permitted here: {added.Error.Trim()}";
        }

        Ip(["netns", "del", probe]);
        return null;
    }

    public static NetworkLab Create()
    {
        RemoveLeftovers();
        var lab = new NetworkLab();
        try
        {
            lab.AddNamespace(lab._switch);
            lab.Run(lab._switch, "ip", "link", "add", "br0", "type", "bridge");
            lab.Run(lab._switch, "ip", "link", "set", "br0", "up");
            return lab;
        }
        catch
        {
            lab.RemoveNamespaces();
            throw;
        }
    }

    public string NamespaceOf(string host) => $"{Prefix}{Environment.ProcessId}-{_lab}-{host}";

    /// <summary>A host on the bridge: its own namespace with loopback up and <c>eth0</c> at <paramref name="address"/> (CIDR).</summary>
    public string AddHost(string host, string address)
    {
        var name = NamespaceOf(host);
        AddNamespace(name);
        Ip(["link", "add", "eth0", "netns", name, "type", "veth", "peer", "name", host, "netns", _switch]);
        Run(_switch, "ip", "link", "set", host, "master", "br0", "up");
        Run(name, "ip", "addr", "add", address, "dev", "eth0");
        Run(name, "ip", "link", "set", "eth0", "up");
        Run(name, "ip", "link", "set", "lo", "up");
        return name;
    }

    /// <summary>Runs a command to completion inside a namespace; a failure throws with its output.</summary>
    public string Run(string ns, params string[] command)
    {
        var result = Ip(["netns", "exec", ns, .. command]);
        return result.Output;
    }

    /// <summary>Starts a long-running command inside a namespace; it is stopped when the lab is disposed.</summary>
    public LabProcess Start(string ns, IReadOnlyList<string> command)
    {
        var process = LabProcess.Start(["ip", "netns", "exec", ns, .. command]);
        lock (_processes)
        {
            _processes.Add(process);
        }

        return process;
    }

    public async ValueTask DisposeAsync()
    {
        List<LabProcess> processes;
        lock (_processes)
        {
            processes = [.. _processes];
        }

        try
        {
            foreach (var process in processes)
            {
                await process.DisposeAsync();
            }
        }
        finally
        {
            // Also kills whatever still runs inside.
            RemoveNamespaces();
        }
    }

    private void AddNamespace(string name)
    {
        Ip(["netns", "add", name]);
        _namespaces.Add(name);
    }

    private void RemoveNamespaces()
    {
        // The switch last: deleting a host namespace deletes its veth pair, bridge port included.
        foreach (var name in Enumerable.Reverse(_namespaces))
        {
            Remove(name);
        }

        _namespaces.Clear();
    }

    /// <summary>Namespaces (and whatever still runs in them) left by a test process that no longer exists.</summary>
    private static void RemoveLeftovers()
    {
        foreach (var line in Ip(["netns", "list"]).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var name = line.Split(' ')[0];
            if (!name.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            var owner = name[Prefix.Length..].Split('-')[0];
            if (int.TryParse(owner, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid != Environment.ProcessId && !Directory.Exists($"/proc/{pid}"))
            {
                Remove(name);
            }
        }
    }

    private static void Remove(string name)
    {
        foreach (var pid in Ip(["netns", "pids", name], throwOnError: false).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                using var process = Process.GetProcessById(int.Parse(pid, CultureInfo.InvariantCulture));
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
            catch (ArgumentException)
            {
                // Gone already.
            }
        }

        Ip(["netns", "del", name], throwOnError: false);
    }

    private static (int ExitCode, string Output, string Error) Ip(IEnumerable<string> args, bool throwOnError = true)
    {
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(30_000))
        {
            process.Kill();
            throw new TimeoutException($"ip {string.Join(' ', start.ArgumentList)} did not finish within 30 s");
        }

        if (throwOnError && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"ip {string.Join(' ', start.ArgumentList)} failed ({process.ExitCode}): {error.Result}{output}");
        }

        return (process.ExitCode, output, error.Result);
    }
}

/// <summary>A long-running process in a lab namespace, its output kept for failure messages.</summary>
internal sealed class LabProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private bool _disposed;

    private LabProcess(Process process) => _process = process;

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

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

    public static LabProcess Start(IReadOnlyList<string> command)
    {
        var start = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }

        // A developer's shell must not change what the balancer does.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("Balancer__", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        var process = new Process { StartInfo = start };
        var lab = new LabProcess(process);
        process.OutputDataReceived += (_, e) => lab.Append(e.Data);
        process.ErrorDataReceived += (_, e) => lab.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return lab;
    }

    /// <summary>Sends a signal (TERM, KILL) to the process itself; <c>ip netns exec</c> execs, so this is the command's own id.</summary>
    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, Id.ToString(CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cancel.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (!_process.HasExited)
        {
            // Politely first: keepalived removes its address and tells its peer on TERM.
            Signal("TERM");
            if (!await WaitForExitAsync(TimeSpan.FromSeconds(10)))
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
            }
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}
