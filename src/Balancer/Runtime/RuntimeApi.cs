using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Balancer.Health;
using Balancer.LoadBalancing;
using Balancer.Management;
using Prometheus;
using Yarp.ReverseProxy;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace Balancer.Runtime;

/// <summary>
/// The runtime API on the management listener (behind its token check):
/// <c>POST /api/destinations/{cluster}/{id}/drain|maintenance|enable</c>, <c>PUT|DELETE .../weight</c>,
/// <c>GET /api/destinations</c>, and <c>POST /api/config/preview</c>. Every accepted change is logged with who, when and what, and counted in
/// <c>balancer_runtime_changes_total</c>; every refused one gets a 4xx with a JSON error and changes nothing.
/// </summary>
internal sealed partial class RuntimeApi
{
    public const string Prefix = "/api/destinations";

    /// <summary>A weight is a number of at most four digits; anything longer is refused before it is read whole.</summary>
    private const int MaxWeightBody = 256;

    private static readonly string[] Actions = ["drain", "maintenance", "enable", "weight"];

    private readonly IProxyStateLookup _proxyState;
    private readonly IClusterDestinationsUpdater _updater;
    private readonly RuntimeOverrides _overrides;
    private readonly DestinationRuntimeViews _views;
    private readonly DrainWatch _drains;
    private readonly TimeProvider _time;
    private readonly ILogger<RuntimeApi> _logger;
    private readonly Counter _changes;
    private readonly IConfiguration _configuration;
    private readonly PolicySnapshots _snapshots;
    private readonly AvailabilityChanges? _availability;

    public RuntimeApi(IConfiguration configuration, IProxyStateLookup proxyState, IClusterDestinationsUpdater updater, RuntimeOverrides overrides, DestinationRuntimeViews views,
        DrainWatch drains, TimeProvider time, Telemetry.BalancerMetricsRegistry metrics, PolicySnapshots snapshots, ILogger<RuntimeApi> logger, AvailabilityChanges? availability = null)
    {
        _availability = availability;
        _snapshots = snapshots;
        _configuration = configuration;
        _proxyState = proxyState;
        _updater = updater;
        _overrides = overrides;
        _views = views;
        _drains = drains;
        _time = time;
        _logger = logger;
        _changes = metrics.Factory.CreateCounter(
            "balancer_runtime_changes_total",
            "Changes made through the runtime API, by action (drain, maintenance, enable, weight, weight_removed).",
            new CounterConfiguration { LabelNames = ["action"] });
        foreach (var action in new[] { "drain", "maintenance", "enable", "weight", "weight_removed" })
        {
            _changes.WithLabels(action);
        }
    }

    public const string PreviewPath = "/api/config/preview";

    /// <summary>A config file is small; a body this large is not one.</summary>
    private const int MaxPreviewBody = 4 * 1024 * 1024;

    public static bool Handles(PathString path) =>
        path.StartsWithSegments(Prefix, StringComparison.Ordinal) || path.Equals(PreviewPath, StringComparison.Ordinal);

    public Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        if (request.Path.Equals(PreviewPath, StringComparison.Ordinal))
        {
            return HttpMethods.IsPost(request.Method) ? PreviewAsync(context) : MethodNotAllowedAsync(context, "POST");
        }

        var rest = request.Path.Value![Prefix.Length..].Trim('/');
        if (rest.Length == 0)
        {
            return HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)
                ? WriteAsync(context, StatusCodes.Status200OK, new DestinationList(List()), RuntimeJson.Default.DestinationList)
                : MethodNotAllowedAsync(context, "GET, HEAD");
        }

        var parts = rest.Split('/');
        if (parts.Length != 3 || !Actions.Contains(parts[2], StringComparer.Ordinal))
        {
            return ErrorAsync(context, StatusCodes.Status404NotFound,
                $"no such resource '{request.Path}': use {Prefix}/{{cluster}}/{{id}}/drain, maintenance, enable (POST) or weight (PUT, DELETE)");
        }

        var action = parts[2];
        var allowed = action == "weight" ? "PUT, DELETE" : "POST";
        var methodOk = action == "weight"
            ? HttpMethods.IsPut(request.Method) || HttpMethods.IsDelete(request.Method)
            : HttpMethods.IsPost(request.Method);
        if (!methodOk)
        {
            return MethodNotAllowedAsync(context, allowed);
        }

        if (!_proxyState.TryGetCluster(parts[0], out var cluster))
        {
            var known = string.Join(", ", _proxyState.GetClusters().Select(c => c.ClusterId).Order(StringComparer.Ordinal));
            return ErrorAsync(context, StatusCodes.Status404NotFound, $"no cluster '{parts[0]}' (clusters: {known})");
        }

        if (!cluster.Destinations.TryGetValue(parts[1], out var destination))
        {
            var known = string.Join(", ", cluster.Destinations.Keys.Order(StringComparer.Ordinal));
            return ErrorAsync(context, StatusCodes.Status404NotFound, $"no destination '{parts[1]}' in cluster '{cluster.ClusterId}' (destinations: {known})");
        }

        return action switch
        {
            "drain" => SetModeAsync(context, cluster, destination, AdminMode.Drain),
            "maintenance" => SetModeAsync(context, cluster, destination, AdminMode.Maintenance),
            "enable" => SetModeAsync(context, cluster, destination, AdminMode.Active),
            _ when HttpMethods.IsDelete(request.Method) => SetWeightAsync(context, cluster, destination, null),
            _ => PutWeightAsync(context, cluster, destination),
        };
    }

    /// <summary>
    /// <c>POST /api/config/preview</c>: the candidate file as the body; 200 with what it would change against the
    /// configuration in force, or 400 with every reason it is invalid. Nothing is applied either way.
    /// </summary>
    private async Task PreviewAsync(HttpContext context)
    {
        if (context.Request.ContentLength > MaxPreviewBody)
        {
            await ErrorAsync(context, StatusCodes.Status413PayloadTooLarge, $"the body is longer than {MaxPreviewBody} bytes; a config file is smaller");
            return;
        }

        using var buffer = new MemoryStream();
        await context.Request.Body.CopyToAsync(buffer, context.RequestAborted);
        if (buffer.Length > MaxPreviewBody)
        {
            await ErrorAsync(context, StatusCodes.Status413PayloadTooLarge, $"the body is longer than {MaxPreviewBody} bytes; a config file is smaller");
            return;
        }

        var candidate = Configuration.ConfigFile.Parse(buffer.ToArray(), "request body");
        if (!candidate.IsValid)
        {
            await WriteAsync(context, StatusCodes.Status400BadRequest, new PreviewRefused("the candidate config is invalid", candidate.Errors), RuntimeJson.Default.PreviewRefused);
            return;
        }

        var report = Configuration.ConfigPreview.Compare(_configuration, candidate.ToConfiguration());
        await WriteAsync(context, StatusCodes.Status200OK, new PreviewResult(report.HasChanges, report.Clusters, Configuration.ConfigPreview.Format(report)), RuntimeJson.Default.PreviewResult);
    }

    /// <summary>Every destination of every cluster with its runtime state, sorted by cluster and id.</summary>
    public IReadOnlyList<DestinationEntry> List()
    {
        List<DestinationEntry> entries = [];
        foreach (var cluster in _proxyState.GetClusters())
        {
            foreach (var destination in cluster.Destinations.Values)
            {
                entries.Add(Entry(cluster, destination));
            }
        }

        entries.Sort(static (a, b) => string.CompareOrdinal(a.Cluster, b.Cluster) is var c and not 0 ? c : string.CompareOrdinal(a.Id, b.Id));
        return entries;
    }

    private DestinationEntry Entry(ClusterState cluster, DestinationState destination) =>
        new(cluster.ClusterId, destination.DestinationId, DestinationHealthView.Of(destination), destination.ConcurrentRequestCount, _views.Of(cluster, destination));

    private Task SetModeAsync(HttpContext context, ClusterState cluster, DestinationState destination, AdminMode mode)
    {
        var by = Who(context);
        var now = _time.GetUtcNow();
        var previous = _overrides.Update(cluster.ClusterId, destination.DestinationId, o =>
            new DestinationOverride(mode, o?.Weight, now, by));
        var before = previous?.Mode ?? AdminMode.Active;
        if (before == AdminMode.Maintenance && mode == AdminMode.Active)
        {
            // Before the update, whose snapshot then weighs the returning destination at the ramp's first step.
            _overrides.StartRamp(cluster.ClusterId, destination.DestinationId, _time.GetTimestamp(),
                changesWeights: SlowStart.DurationOf(destination, cluster.Model) is not null);
        }

        // Synchronous: the very next pick already sees the destination in or out, and the updater (PreparingDestinationsUpdater)
        // has built the policy's snapshot for it. Announced, so that only this destination is looked at again.
        using (_availability?.Announce(cluster, destination))
        {
            _updater.UpdateAvailableDestinations(cluster);
        }

        var inFlight = destination.ConcurrentRequestCount;
        var action = mode switch { AdminMode.Drain => "drain", AdminMode.Maintenance => "maintenance", _ => "enable" };
        _changes.WithLabels(action).Inc();
        LogModeChanged(cluster.ClusterId, destination.DestinationId, before, mode, inFlight, by);
        if (mode != AdminMode.Active)
        {
            _drains.Watch(cluster, destination);
        }

        return WriteAsync(context, StatusCodes.Status200OK, new ChangeResult(action, inFlight, Entry(cluster, destination)), RuntimeJson.Default.ChangeResult);
    }

    private async Task PutWeightAsync(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        var (weight, error, status) = await ReadWeightAsync(context.Request, context.RequestAborted);
        if (weight is null)
        {
            await ErrorAsync(context, status, error!);
            return;
        }

        await SetWeightAsync(context, cluster, destination, weight);
    }

    private Task SetWeightAsync(HttpContext context, ClusterState cluster, DestinationState destination, int? weight)
    {
        var by = Who(context);
        var now = _time.GetUtcNow();
        var previous = _overrides.Update(cluster.ClusterId, destination.DestinationId, o =>
            new DestinationOverride(o?.Mode ?? AdminMode.Active, weight, now, by));
        _snapshots.Prepare(cluster);
        var action = weight is null ? "weight_removed" : "weight";
        _changes.WithLabels(action).Inc();
        var fileWeight = DestinationWeight.Of(destination.Model.Config);
        LogWeightChanged(cluster.ClusterId, destination.DestinationId, previous?.Weight ?? fileWeight, weight ?? fileWeight, weight is null ? "file" : "override", by);
        return WriteAsync(context, StatusCodes.Status200OK, new ChangeResult(action, destination.ConcurrentRequestCount, Entry(cluster, destination)), RuntimeJson.Default.ChangeResult);
    }

    /// <summary>The body as a whole number 1-1000, plain (<c>3</c>) or JSON (<c>{"weight": 3}</c>).</summary>
    internal static async Task<(int? Weight, string? Error, int Status)> ReadWeightAsync(HttpRequest request, CancellationToken cancellation)
    {
        if (request.ContentLength > MaxWeightBody)
        {
            return (null, $"the body is longer than {MaxWeightBody} bytes ({request.ContentLength}); send only the weight, e.g. '3' or '{{\"weight\": 3}}'", StatusCodes.Status413PayloadTooLarge);
        }

        var buffer = new byte[MaxWeightBody + 1];
        var length = 0;
        int read;
        while (length < buffer.Length && (read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellation)) > 0)
        {
            length += read;
        }

        if (length > MaxWeightBody)
        {
            return (null, $"the body is longer than {MaxWeightBody} bytes; send only the weight, e.g. '3' or '{{\"weight\": 3}}'", StatusCodes.Status413PayloadTooLarge);
        }

        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer, 0, length).Trim();
        }
        catch (DecoderFallbackException)
        {
            return (null, "the body is not UTF-8 text", StatusCodes.Status400BadRequest);
        }

        if (text.Length == 0)
        {
            return (null, $"the body is empty; send a whole number from 1 to {DestinationWeight.Max}, e.g. '3' or '{{\"weight\": 3}}'", StatusCodes.Status400BadRequest);
        }

        var raw = text;
        if (text[0] == '{')
        {
            try
            {
                using var document = JsonDocument.Parse(text);
                if (!document.RootElement.TryGetProperty("weight", out var value) || value.ValueKind != JsonValueKind.Number)
                {
                    return (null, "the JSON body needs a number 'weight', e.g. {\"weight\": 3}", StatusCodes.Status400BadRequest);
                }

                raw = value.GetRawText();
            }
            catch (JsonException e)
            {
                return (null, $"the body is not valid JSON: {e.Message}", StatusCodes.Status400BadRequest);
            }
        }

        return DestinationWeight.TryParse(raw, out var weight, out var reason)
            ? (weight, null, StatusCodes.Status200OK)
            : (null, $"weight: {reason}", StatusCodes.Status400BadRequest);
    }

    /// <summary>Who made a change: the user name of a Basic login (the status page's browser), else how they authenticated, and from where.</summary>
    private static string Who(HttpContext context)
    {
        var authorization = context.Request.Headers.Authorization.ToString();
        var identity = authorization.Length == 0 ? "anonymous"
            : ManagementAccess.BasicUser(authorization) is { Length: > 0 } user ? user
            : "token";
        var address = context.Connection.RemoteIpAddress;
        return address is null ? identity : $"{identity}@{(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString()}";
    }

    internal static Task ErrorAsync(HttpContext context, int status, string error) =>
        WriteAsync(context, status, new ErrorBody(error), RuntimeJson.Default.ErrorBody);

    private static Task MethodNotAllowedAsync(HttpContext context, string allowed)
    {
        context.Response.Headers.Allow = allowed;
        return ErrorAsync(context, StatusCodes.Status405MethodNotAllowed, $"method {context.Request.Method} is not allowed on {context.Request.Path}; use {allowed}");
    }

    internal static Task WriteAsync<T>(HttpContext context, int status, T body, JsonTypeInfo<T> json)
    {
        context.Response.StatusCode = status;
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsJsonAsync(body, json);
    }

    [LoggerMessage(EventId = 7111, Level = LogLevel.Information, Message = "Runtime change by {By}: {Cluster}/{Destination} {From} -> {To} ({InFlight} request(s) in flight)")]
    private partial void LogModeChanged(string cluster, string destination, AdminMode from, AdminMode to, int inFlight, string by);

    [LoggerMessage(EventId = 7112, Level = LogLevel.Information, Message = "Runtime change by {By}: {Cluster}/{Destination} weight {From} -> {To} ({Source})")]
    private partial void LogWeightChanged(string cluster, string destination, int from, int to, string source, string by);

    /// <summary>The answer of <c>GET /api/destinations</c>.</summary>
    public sealed record DestinationList(IReadOnlyList<DestinationEntry> Destinations);

    /// <summary>One destination in the runtime API.</summary>
    public sealed record DestinationEntry(string Cluster, string Id, string Health, int InFlight, DestinationRuntime Runtime);

    /// <summary>The answer to a change: what was done, how many requests were in flight at that moment, and the result.</summary>
    public sealed record ChangeResult(string Action, int InFlight, DestinationEntry Destination);

    private sealed record ErrorBody(string Error);

    private sealed record PreviewRefused(string Error, IReadOnlyList<string> Errors);

    private sealed record PreviewResult(bool Changes, IReadOnlyList<Configuration.ConfigPreview.ClusterChanges> Clusters, string Text);

    /// <summary>The API's JSON, written by generated code rather than by reflection.</summary>
    [JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
    [JsonSerializable(typeof(DestinationList))]
    [JsonSerializable(typeof(ChangeResult))]
    [JsonSerializable(typeof(ErrorBody))]
    [JsonSerializable(typeof(PreviewRefused))]
    [JsonSerializable(typeof(PreviewResult))]
    private sealed partial class RuntimeJson : JsonSerializerContext;
}
