using System.Text.Json.Nodes;

namespace Balancer.Tests.Deployment;

/// <summary>deploy/config/balancer.json: the balancer config the compose stack and the lb VM both run.</summary>
internal static class DeployConfig
{
    public const string Path = "deploy/config/balancer.json";

    /// <summary>Balancer:Tls:CertificatePath and KeyPath as shipped: where provisioning makes the self-signed pair.</summary>
    public const string CertificatePath = "/etc/balancer/tls/tls.crt";

    public const string KeyPath = "/etc/balancer/tls/tls.key";

    public static JsonObject Load() => JsonNode.Parse(Repo.Read(Path))!.AsObject();

    /// <summary>Destination id to address, e.g. A to http://backend-a:5001/ (cluster <c>grpc</c>: http://backend-a:6001/).</summary>
    public static Dictionary<string, string> Destinations(string cluster = "backends") =>
        Load()["ReverseProxy"]!["Clusters"]![cluster]!["Destinations"]!.AsObject()
            .ToDictionary(d => d.Key, d => (string)d.Value!["Address"]!);
}
