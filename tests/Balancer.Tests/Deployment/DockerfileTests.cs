using System.Text.RegularExpressions;

namespace Balancer.Tests.Deployment;

/// <summary>
/// The two Dockerfiles, read instruction by instruction (hadolint is not available and no Docker engine
/// runs here): pinned .NET 10 base images, a non-root final stage, a HEALTHCHECK that uses the app's probe
/// mode, and COPY sources that exist and are not excluded from the build context. The balancer's image carries
/// its Native AOT executable on the runtime-deps image; the sample backend's runs its DLL on the ASP.NET one.
/// </summary>
[Trait("Category", "Unit")]
public sealed partial class DockerfileTests
{
    public static TheoryData<string, string> Images => new()
    {
        { "src/Balancer/Dockerfile", "Balancer" },
        { "src/SampleBackend/Dockerfile", "SampleBackend" },
    };

    /// <summary>How each image starts its app, in exec form: the native executable, or dotnet and the DLL.</summary>
    private static readonly Dictionary<string, string> Commands = new(StringComparer.Ordinal)
    {
        ["Balancer"] = "\"/app/Balancer\"",
        ["SampleBackend"] = "\"dotnet\", \"/app/SampleBackend.dll\"",
    };

    /// <summary>The runtime patch a Dockerfile's final stage is pinned to, e.g. 10.0.12.</summary>
    public static string RuntimeVersion(string dockerfile) =>
        RuntimeImage().Match(Stages(dockerfile)[^1].From).Groups["version"].Value;

    [Theory]
    [MemberData(nameof(Images))]
    public void Dockerfile_UsesKnownInstructionsOnly(string dockerfile, string project)
    {
        var known = new HashSet<string>(StringComparer.Ordinal) { "FROM", "WORKDIR", "COPY", "RUN", "ENV", "USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT", "CMD", "ARG", "LABEL" };

        var instructions = Instructions(dockerfile);

        Assert.NotEmpty(instructions);
        Assert.All(instructions, i => Assert.True(known.Contains(i.Keyword), $"{dockerfile}: unknown or unexpected instruction '{i.Keyword}' ({project})"));
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Dockerfile_BuildsWithThePinnedSdk_AndRunsOnThePinnedChiseledRuntime(string dockerfile, string project)
    {
        var stages = Stages(dockerfile);

        Assert.Equal(2, stages.Count);
        var sdk = Regex.Match(stages[0].From, @"^mcr\.microsoft\.com/dotnet/sdk:(?<version>10\.0\.\d{3})-noble AS build$");
        Assert.True(sdk.Success, $"{dockerfile}: build stage '{stages[0].From}' is not a pinned .NET 10 SDK");
        Assert.Contains($"dotnet publish src/{project}/{project}.csproj", stages[0].Text, StringComparison.Ordinal);

        // global.json's SDK must be satisfiable by the pinned SDK (same major.minor, feature band at least).
        var required = Version.Parse((string)System.Text.Json.Nodes.JsonNode.Parse(Repo.Read("global.json"))!["sdk"]!["version"]!);
        Assert.True(Version.Parse(sdk.Groups["version"].Value) >= required, $"SDK {sdk.Groups["version"].Value} is older than global.json's {required}");

        var runtime = RuntimeImage().Match(stages[1].From);
        Assert.True(runtime.Success, $"{dockerfile}: final stage '{stages[1].From}' is not a pinned chiseled .NET 10 runtime image");
        Assert.Equal(RuntimeVersion("src/Balancer/Dockerfile"), RuntimeVersion(dockerfile));

        // A Native AOT executable needs no .NET runtime in the image; a DLL needs the ASP.NET one.
        var native = stages[0].Text.Contains("-p:PublishAot=true", StringComparison.Ordinal);
        Assert.Equal(native ? "runtime-deps" : "aspnet", runtime.Groups["image"].Value);
        Assert.Equal(project == "Balancer", native);
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Dockerfile_FinalStage_RunsAsNonRoot_WithAProbeHealthcheck(string dockerfile, string project)
    {
        var final = Stages(dockerfile)[^1].Instructions;

        var user = Assert.Single(final, i => i.Keyword == "USER").Arguments;
        Assert.DoesNotMatch(@"^(root|0)(:.*)?$", user);
        Assert.Equal("$APP_UID", user);

        var healthcheck = Assert.Single(final, i => i.Keyword == "HEALTHCHECK").Arguments;
        var probe = Regex.Match(healthcheck, @"CMD \[(?<command>.+), ""--probe"", ""(?<target>[^""]+)""\]$");
        Assert.True(probe.Success, $"{dockerfile}: HEALTHCHECK '{healthcheck}' does not run the app's --probe mode in exec form");
        Assert.Equal(Commands[project], probe.Groups["command"].Value);
        Assert.Matches(@"--interval=\d+s", healthcheck);

        var entrypoint = Assert.Single(final, i => i.Keyword == "ENTRYPOINT").Arguments;
        Assert.Equal($"[{Commands[project]}]", entrypoint);
        Assert.DoesNotContain(final, i => i.Keyword == "RUN");
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Dockerfile_CopiesOnlyWhatExists_AndIsNotExcludedFromTheContext(string dockerfile, string project)
    {
        var ignored = Repo.Read(".dockerignore").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var copies = Stages(dockerfile)[0].Instructions.Where(i => i.Keyword == "COPY").ToList();

        Assert.Contains(copies, c => c.Arguments.StartsWith($"src/{project}/ ", StringComparison.Ordinal));
        foreach (var copy in copies)
        {
            var sources = copy.Arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries)[..^1];
            foreach (var source in sources)
            {
                Assert.True(File.Exists(Repo.PathOf(source)) || Directory.Exists(Repo.PathOf(source)), $"{dockerfile}: COPY source {source} does not exist");
                Assert.DoesNotContain(ignored, pattern => source.TrimEnd('/') == pattern.TrimEnd('/') || source.StartsWith(pattern.TrimEnd('/') + "/", StringComparison.Ordinal));
            }
        }

        // The context keeps build output and secrets out.
        Assert.Contains("**/bin/", ignored);
        Assert.Contains("**/obj/", ignored);
        Assert.Contains(".env", ignored);
    }

    [GeneratedRegex(@"^mcr\.microsoft\.com/dotnet/(?<image>aspnet|runtime-deps):(?<version>10\.0\.\d+)-noble-chiseled AS final$")]
    private static partial Regex RuntimeImage();

    private static List<Stage> Stages(string dockerfile)
    {
        var stages = new List<Stage>();
        foreach (var instruction in Instructions(dockerfile))
        {
            if (instruction.Keyword == "FROM")
            {
                stages.Add(new Stage(instruction.Arguments, []));
            }
            else
            {
                Assert.True(stages.Count > 0, $"{dockerfile}: {instruction.Keyword} before the first FROM");
                stages[^1].Instructions.Add(instruction);
            }
        }

        return stages;
    }

    /// <summary>Instructions with line continuations joined and comments dropped, as Docker reads them.</summary>
    private static List<Instruction> Instructions(string dockerfile)
    {
        var instructions = new List<Instruction>();
        var pending = string.Empty;
        foreach (var raw in Repo.Read(dockerfile).Split('\n'))
        {
            var line = raw.Trim();
            if (line.StartsWith('#') || (line.Length == 0 && pending.Length == 0))
            {
                continue;
            }

            if (line.EndsWith('\\'))
            {
                pending += line[..^1].Trim() + " ";
                continue;
            }

            var full = (pending + line).Trim();
            pending = string.Empty;
            if (full.Length == 0)
            {
                continue;
            }

            var space = full.IndexOf(' ');
            Assert.True(space > 0, $"{dockerfile}: '{full}' has no arguments");
            instructions.Add(new Instruction(full[..space], full[(space + 1)..].Trim()));
        }

        Assert.True(pending.Length == 0, $"{dockerfile}: ends inside a line continuation");
        return instructions;
    }

    private sealed record Instruction(string Keyword, string Arguments);

    private sealed record Stage(string From, List<Instruction> Instructions)
    {
        public string Text => string.Join('\n', Instructions.Select(i => $"{i.Keyword} {i.Arguments}"));
    }
}
