using System.ComponentModel;
using System.Diagnostics;
using System.Text.Json.Nodes;

namespace Balancer.Tests.Deployment;

/// <summary>The repository checkout the tests run from, and the real tools that validate its deploy files.</summary>
internal static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    public static string Read(string relative) => File.ReadAllText(PathOf(relative));

    /// <summary>Runs a tool to completion; a missing tool fails the test naming the package that provides it.</summary>
    public static ToolResult Run(string tool, IEnumerable<string> args, string? stdin = null, IReadOnlyDictionary<string, string?>? env = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(tool)
        {
            WorkingDirectory = workingDirectory ?? Root,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in env ?? new Dictionary<string, string?>())
        {
            // null removes a variable this process has, so a developer's shell cannot change a result.
            if (value is null)
            {
                start.Environment.Remove(name);
            }
            else
            {
                start.Environment[name] = value;
            }
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"'{tool}' could not be started ({e.Message}); ./test.sh installs the Debian packages the deployment tests use.", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardInput.Write(stdin ?? string.Empty);
            process.StandardInput.Close();
            if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish within 60 s");
            }

            return new ToolResult(process.ExitCode, stdout.Result, stderr.Result);
        }
    }

    /// <summary>Parses YAML with Ruby's own parser (Psych), the same family of parser Vagrant and most tools use.</summary>
    public static JsonNode Yaml(string text)
    {
        var result = Run("ruby", ["-ryaml", "-rjson", "-e", "puts JSON.generate(YAML.safe_load($stdin.read, aliases: true))"], stdin: text);
        Assert.True(result.ExitCode == 0, $"YAML did not parse: {result.Stderr}");
        return JsonNode.Parse(result.Stdout)!;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LoadBalancer.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No LoadBalancer.sln above {AppContext.BaseDirectory}");
    }
}

internal sealed record ToolResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}{Environment.NewLine}stdout: {Stdout}{Environment.NewLine}stderr: {Stderr}";
}
