using System.Collections.Concurrent;
using Microsoft.AspNetCore.Http;
using Prometheus;
using Yarp.ReverseProxy;

namespace Balancer.Telemetry;

/// <summary>
/// <c>balancer_requests_by_protocol_total{cluster,protocol}</c>: the client requests of each cluster by the
/// protocol they came in with, so HTTP/1.1, HTTP/2 and gRPC traffic can be told apart (the per-destination
/// series count attempts, whatever the protocol).
/// </summary>
internal sealed class ProtocolMetrics
{
    public const string Http1 = "HTTP/1.1";
    public const string Http2 = "HTTP/2";
    public const string Http3 = "HTTP/3";
    public const string Grpc = "gRPC";

    /// <summary>The label values by index; HTTP/3 last, as the only one not created up front.</summary>
    private static readonly string[] Protocols = [Http1, Http2, Grpc, Http3];

    private readonly Counter _requests;
    private readonly IProxyStateLookup _proxyState;
    private readonly ConcurrentDictionary<string, Counter.Child?[]> _byCluster = new(StringComparer.Ordinal);

    public ProtocolMetrics(BalancerMetricsRegistry metrics, IProxyStateLookup proxyState)
    {
        _proxyState = proxyState;
        _requests = metrics.Factory.CreateCounter(
            "balancer_requests_by_protocol_total",
            "Client requests to the cluster by the protocol they came in with: HTTP/1.1, HTTP/2, HTTP/3, or gRPC (calls over HTTP/2 or HTTP/3, counted here and not under their HTTP version). Counted once per request, retries or not.",
            new CounterConfiguration { LabelNames = ["cluster", "protocol"] });
        metrics.Registry.AddBeforeCollectCallback(Refresh);
    }

    public void Count(string clusterId, HttpRequest request)
    {
        var index = Balancer.Grpc.GrpcProtocol.IsGrpc(request) ? 2
            : HttpProtocol.IsHttp2(request.Protocol) ? 1
            : HttpProtocol.IsHttp3(request.Protocol) ? 3
            : 0;
        var children = _byCluster.GetOrAdd(clusterId, Create);
        (children[index] ??= _requests.WithLabels(clusterId, Protocols[index])).Inc();
    }

    private Counter.Child?[] Create(string clusterId)
    {
        var children = new Counter.Child?[Protocols.Length];
        for (var i = 0; i < Protocols.Length - 1; i++)
        {
            children[i] = _requests.WithLabels(clusterId, Protocols[i]);
        }

        return children;
    }

    /// <summary>Series for every cluster from start-up, so rate() works before the first request; gone clusters lose theirs.</summary>
    private void Refresh()
    {
        var current = new HashSet<string>(StringComparer.Ordinal);
        foreach (var cluster in _proxyState.GetClusters())
        {
            current.Add(cluster.ClusterId);
            _byCluster.GetOrAdd(cluster.ClusterId, Create);
        }

        foreach (var clusterId in _byCluster.Keys)
        {
            if (!current.Contains(clusterId) && _byCluster.TryRemove(clusterId, out _))
            {
                foreach (var protocol in Protocols)
                {
                    _requests.RemoveLabelled(clusterId, protocol);
                }
            }
        }
    }
}
