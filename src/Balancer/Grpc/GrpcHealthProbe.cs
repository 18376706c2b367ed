using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Grpc.Health.V1;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Grpc;

/// <summary>
/// Active health checks by the standard gRPC health protocol (<c>grpc.health.v1.Health/Check</c>) for the
/// clusters whose metadata asks for it. YARP's probe is an HTTP GET judged by its status code; a gRPC server
/// answers every call with HTTP 200 and puts the verdict in the message and the trailers. So the probe
/// request is built here, and <see cref="Handler"/> reads the whole answer and hands YARP's health policy a
/// plain 200 (SERVING) or 503 (anything else), which it judges as usual.
/// </summary>
internal static class GrpcHealthProbe
{
    /// <summary>Cluster metadata: <c>Grpc</c> probes by the gRPC health protocol, <c>Http</c> (the default) by GET.</summary>
    public const string ProtocolKey = "HealthCheck.Protocol";

    /// <summary>Cluster metadata: the service name asked about; empty (the default) asks about the whole server.</summary>
    public const string ServiceKey = "HealthCheck.GrpcService";

    public const string ProtocolGrpc = "Grpc";
    public const string ProtocolHttp = "Http";
    public const string CheckPath = "/grpc.health.v1.Health/Check";

    public static bool IsEnabled(ClusterConfig cluster) =>
        cluster.Metadata?.TryGetValue(ProtocolKey, out var protocol) == true
        && string.Equals(protocol, ProtocolGrpc, StringComparison.OrdinalIgnoreCase);

    public static Health.ProbeMessage CreateRequest(ClusterModel cluster, DestinationModel destination)
    {
        var service = cluster.Config.Metadata?.GetValueOrDefault(ServiceKey) ?? string.Empty;
        var address = destination.Config.Health ?? destination.Config.Address;
        var request = new ProbeRequest(new Uri(address.TrimEnd('/') + CheckPath, UriKind.Absolute))
        {
            // gRPC is HTTP/2 only; to a cleartext destination that means prior knowledge, so no fallback.
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(Frame(new HealthCheckRequest { Service = service })),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue(GrpcProtocol.ContentType);
        request.Headers.TE.Add(new TransferCodingWithQualityHeaderValue("trailers"));
        return request;
    }

    /// <summary>A message in gRPC's length-prefixed framing: not compressed, 4-byte big-endian length, bytes.</summary>
    private static byte[] Frame(IMessage message)
    {
        var size = message.CalculateSize();
        var frame = new byte[5 + size];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1, 4), (uint)size);
        message.WriteTo(frame.AsSpan(5));
        return frame;
    }

    /// <summary>The verdict in a whole Check answer: SERVING with grpc-status 0, or why not.</summary>
    internal static (bool Serving, string Reason) Judge(HttpResponseMessage response, byte[] body)
    {
        var status = GrpcProtocol.ParseStatus(Header(response.TrailingHeaders, GrpcProtocol.StatusHeader))
            ?? GrpcProtocol.ParseStatus(Header(response.Headers, GrpcProtocol.StatusHeader));
        if (status is null)
        {
            return (false, "gRPC health check answered without a grpc-status");
        }

        if (status != GrpcProtocol.Ok)
        {
            return (false, $"gRPC health check failed: {GrpcProtocol.Name(status.Value)}");
        }

        if (body.Length < 5 || body[0] != 0 || BinaryPrimitives.ReadUInt32BigEndian(body.AsSpan(1, 4)) != body.Length - 5)
        {
            return (false, "gRPC health check answer is not one uncompressed message");
        }

        HealthCheckResponse.Types.ServingStatus serving;
        try
        {
            serving = HealthCheckResponse.Parser.ParseFrom(body.AsSpan(5)).Status;
        }
        catch (InvalidProtocolBufferException)
        {
            return (false, "gRPC health check answer is not a HealthCheckResponse");
        }

        return serving == HealthCheckResponse.Types.ServingStatus.Serving
            ? (true, "SERVING")
            : (false, $"gRPC health status {serving}");
    }

    private static string? Header(HttpHeaders headers, string name) =>
        headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>A probe of the gRPC health protocol; its type is what <see cref="Handler"/> looks for.</summary>
    private sealed class ProbeRequest(Uri uri) : Health.ProbeMessage(HttpMethod.Post, uri);

    /// <summary>
    /// Outermost handler of every cluster's client: reads the whole answer of a gRPC health probe and turns
    /// it into 200 or 503. Other requests, and probes skipped for maintenance, pass untouched.
    /// </summary>
    internal sealed class Handler : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            request is ProbeRequest && !Health.ProbeMarks.IsSkipped(request) ? ProbeAsync(request, cancellationToken) : base.SendAsync(request, cancellationToken);

        private async Task<HttpResponseMessage> ProbeAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            using var response = await base.SendAsync(request, cancellationToken);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return Verdict(request, HttpStatusCode.ServiceUnavailable, $"gRPC health check answered HTTP {(int)response.StatusCode}");
            }

            // Trailers arrive only once the body has been read to its end.
            var body = await response.Content.ReadAsByteArrayAsync(cancellationToken);
            var (serving, reason) = Judge(response, body);
            return Verdict(request, serving ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable, reason);
        }

        private static HttpResponseMessage Verdict(HttpRequestMessage request, HttpStatusCode status, string reason) =>
            new(status) { RequestMessage = request, ReasonPhrase = reason, Version = HttpVersion.Version20 };
    }
}
