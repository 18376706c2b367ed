using System.Diagnostics;

namespace Bench.Processes;

/// <summary>Runs a short-lived tool to completion and captures what it printed.</summary>
internal static class Command
{
    /// <param name="started">Told the process as soon as it runs, so the caller can track it by PID.</param>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string file, IEnumerable<string> arguments, CancellationToken cancellationToken = default, Action<Process>? started = null)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        started?.Invoke(process);
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode, await output, await error);
    }

    public static (int ExitCode, string Output, string Error) Run(string file, params string[] arguments) =>
        RunAsync(file, arguments).GetAwaiter().GetResult();
}
