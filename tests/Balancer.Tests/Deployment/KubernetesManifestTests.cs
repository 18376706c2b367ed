using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Balancer.Tests.Infrastructure;

namespace Balancer.Tests.Deployment;

/// <summary>
/// deploy/kubernetes, loaded as YAML (Ruby's YAML library, turned into JSON) and checked field by field
/// against the balancer's own config: no Kubernetes cluster or schema validator runs here.
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
