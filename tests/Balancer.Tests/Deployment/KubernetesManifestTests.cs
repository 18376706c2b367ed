using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Deployment;

/// <summary>
/// deploy/kubernetes, validated against the Kubernetes OpenAPI schema (kubernetes-models from npm, offline, see
/// tests/kubernetes-schema), then loaded as YAML (Ruby's YAML library, turned into JSON) and checked field by
/// field against the balancer's own config. No Kubernetes cluster runs here.
/// </summary>
public sealed class KubernetesManifestTests
{
    private static readonly Lazy<List<JsonObject>> Documents = new(Load);

    [Fact]
    public void Manifests_AreTheExpectedObjects_EachNamed()
    {
        Assert.Equal(
            ["ConfigMap/balancer-config", "Deployment/balancer", "PodDisruptionBudget/balancer", "Service/balancer", "Service/balancer-management"],
            Documents.Value.Select(d => $"{d["kind"]}/{d["metadata"]!["name"]}").Order(StringComparer.Ordinal));
        Assert.All(Documents.Value, d => Assert.False(string.IsNullOrEmpty((string?)d["apiVersion"])));
    }

    [Fact]
    public void Manifests_PassTheKubernetesSchema()
    {
        var files = Directory.GetFiles(Repo.PathOf("deploy/kubernetes"), "*.yaml").Order(StringComparer.Ordinal).ToList();

        var result = ValidateSchema(files);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Equal(Documents.Value.Count, result.Stdout.Split('\n').Count(l => l.EndsWith(": valid", StringComparison.Ordinal)));
    }

    [Theory]
    [InlineData("  replicas: 2\n", "  replicas: two\n", "/spec/replicas must be integer")]
    [InlineData("containerPort: 8080", "containerPort: \"8080\"", "/containerPort must be integer")]
    [InlineData("apiVersion: apps/v1", "apiVersion: apps/v2", "no schema for apps/v2 Deployment")]
    public void SchemaCheck_RejectsADeploymentThatBreaksTheSchema_NamingTheField(string valid, string broken, string reason)
    {
        var original = Repo.Read("deploy/kubernetes/deployment.yaml");
        Assert.Contains(valid, original, StringComparison.Ordinal);
        var directory = Directory.CreateTempSubdirectory("k8s-schema-").FullName;
        try
        {
            var file = Path.Combine(directory, "deployment.yaml");
            File.WriteAllText(file, original.Replace(valid, broken, StringComparison.Ordinal));

            var result = ValidateSchema([file]);

            Assert.Equal(1, result.ExitCode);
            Assert.Contains("Deployment/balancer: invalid: ", result.Stdout, StringComparison.Ordinal);
            Assert.Contains(reason, result.Stdout, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void Deployment_TwoReplicas_ProbesOnTheManagementPort_ReadyzAndHealthz()
    {
        var deployment = Object("Deployment", "balancer");
        var container = Container();
        var config = Config();

        Assert.Equal(2, (int)deployment["spec"]!["replicas"]!);
        Assert.Equal(0, (int)deployment["spec"]!["strategy"]!["rollingUpdate"]!["maxUnavailable"]!);
        Assert.Equal("/readyz", (string?)container["readinessProbe"]!["httpGet"]!["path"]);
        Assert.Equal("/healthz", (string?)container["livenessProbe"]!["httpGet"]!["path"]);
        Assert.Equal(Port(config["Balancer"]!["Management"]!["Listen"]!), ContainerPort((string)container["readinessProbe"]!["httpGet"]!["port"]!));
        Assert.Equal(Port(config["Balancer"]!["Management"]!["Listen"]!), ContainerPort((string)container["livenessProbe"]!["httpGet"]!["port"]!));
        Assert.Equal(Port(config["Balancer"]!["Listen"]!), ContainerPort("http"));
    }

    [Fact]
    public void Deployment_GracePeriod_CoversTheDrainDelayAndTheDrain()
    {
        var spec = Object("Deployment", "balancer")["spec"]!["template"]!["spec"]!;
        var config = Config()["Balancer"]!;

        var needed = TimeSpan.Parse((string)config["Shutdown"]!["DrainDelay"]!, CultureInfo.InvariantCulture) + TimeSpan.Parse((string)config["ShutdownTimeout"]!, CultureInfo.InvariantCulture);

        Assert.InRange((int)spec["terminationGracePeriodSeconds"]!, needed.TotalSeconds + 1, needed.TotalSeconds + 15);
    }

    [Fact]
    public void Deployment_NonRoot_ReadOnlyRootFileSystem_NoCapabilities_ResourcesSet()
    {
        var pod = Object("Deployment", "balancer")["spec"]!["template"]!["spec"]!;
        var container = Container();

        Assert.True((bool)pod["securityContext"]!["runAsNonRoot"]!);
        Assert.NotEqual(0, (int)pod["securityContext"]!["runAsUser"]!);
        Assert.True((bool)container["securityContext"]!["readOnlyRootFilesystem"]!);
        Assert.False((bool)container["securityContext"]!["allowPrivilegeEscalation"]!);
        Assert.Equal(["ALL"], container["securityContext"]!["capabilities"]!["drop"]!.AsArray().Select(c => (string?)c));
        Assert.NotNull(container["resources"]!["requests"]!["cpu"]);
        Assert.NotNull(container["resources"]!["requests"]!["memory"]);
        Assert.NotNull(container["resources"]!["limits"]!["memory"]);
    }

    [Fact]
    public void Deployment_MountsTheConfigMapAsADirectory_SoEditsReachTheRunningBalancer()
    {
        var pod = Object("Deployment", "balancer")["spec"]!["template"]!["spec"]!;
        var container = Container();
        var args = container["args"]!.AsArray().Select(a => (string)a!).ToList();
        var configPath = args[args.IndexOf("--config") + 1];

        var mount = Assert.Single(container["volumeMounts"]!.AsArray(), m => (string?)m!["name"] == "config")!;
        var volume = Assert.Single(pod["volumes"]!.AsArray(), v => (string?)v!["name"] == "config")!;

        // A subPath mount is never updated; only a directory mount sees the ..data swap.
        Assert.Null(mount["subPath"]);
        Assert.Equal(Path.GetDirectoryName(configPath), (string?)mount["mountPath"]);
        Assert.Equal("balancer-config", (string?)volume["configMap"]!["name"]);
        Assert.NotNull(Object("ConfigMap", "balancer-config")["data"]![Path.GetFileName(configPath)]);
    }

    [Fact]
    public void ServicesAndBudget_SelectThePods_PrometheusScrapesTheManagementPort()
    {
        var template = Object("Deployment", "balancer")["spec"]!["template"]!;
        var labels = template["metadata"]!["labels"]!.AsObject();
        var annotations = template["metadata"]!["annotations"]!;

        Assert.True(JsonNode.DeepEquals(Object("Deployment", "balancer")["spec"]!["selector"]!["matchLabels"], labels));
        foreach (var service in new[] { "balancer", "balancer-management" })
        {
            var spec = Object("Service", service)["spec"]!;
            Assert.True(JsonNode.DeepEquals(spec["selector"], labels), service);
            Assert.All(spec["ports"]!.AsArray(), p => ContainerPort((string)p!["targetPort"]!));
        }

        var budget = Object("PodDisruptionBudget", "balancer")["spec"]!;
        Assert.True(JsonNode.DeepEquals(budget["selector"]!["matchLabels"], labels));
        Assert.InRange((int)budget["minAvailable"]!, 1, (int)Object("Deployment", "balancer")["spec"]!["replicas"]! - 1);
        Assert.Equal("true", (string?)annotations["prometheus.io/scrape"]);
        Assert.Equal("/metrics", (string?)annotations["prometheus.io/path"]);
        Assert.Equal(ContainerPort("management"), int.Parse((string)annotations["prometheus.io/port"]!, CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task ConfigMapConfig_PassesCheckConfig()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("k8s-config-").FullName, "balancer.json");
        try
        {
            File.WriteAllText(file, Config().ToJsonString());
            await using var check = BalancerProcess.Start("--check-config", file);

            Assert.True(await check.WaitForExitAsync(TimeSpan.FromSeconds(60)) == 0, check.Output);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
        }
    }

    /// <summary>Runs the schema check; its packages are installed by test.sh (npm ci).</summary>
    private static ToolResult ValidateSchema(IEnumerable<string> files)
    {
        var validator = Repo.PathOf("tests/kubernetes-schema");
        Assert.True(
            Directory.Exists(Path.Combine(validator, "node_modules", "kubernetes-models")),
            $"{validator}/node_modules is missing: ./test.sh installs it (or run: npm ci --prefix {validator}).");
        return Repo.Run("node", [Path.Combine(validator, "validate.mjs"), .. files]);
    }

    private static JsonObject Object(string kind, string name) =>
        Documents.Value.Single(d => (string?)d["kind"] == kind && (string?)d["metadata"]!["name"] == name);

    private static JsonObject Container() =>
        Object("Deployment", "balancer")["spec"]!["template"]!["spec"]!["containers"]!.AsArray().Single(c => (string?)c!["name"] == "balancer")!.AsObject();

    private static JsonObject Config() => JsonNode.Parse((string)Object("ConfigMap", "balancer-config")["data"]!["balancer.json"]!)!.AsObject();

    private static int ContainerPort(string name) =>
        (int)Container()["ports"]!.AsArray().Single(p => (string?)p!["name"] == name)!["containerPort"]!;

    private static int Port(JsonNode listen) => new Uri((string)listen!).Port;

    private static List<JsonObject> Load()
    {
        var documents = new List<JsonObject>();
        foreach (var file in Directory.GetFiles(Repo.PathOf("deploy/kubernetes"), "*.yaml").Order(StringComparer.Ordinal))
        {
            var result = Repo.Run("ruby", ["-ryaml", "-rjson", "-e", "puts JSON.generate(YAML.load_stream(File.read(ARGV[0])))", file]);
            Assert.True(result.ExitCode == 0, $"{file} is not valid YAML: {result}");
            documents.AddRange(JsonNode.Parse(result.Stdout)!.AsArray().Select(d => d!.AsObject()));
        }

        return documents;
    }
}
