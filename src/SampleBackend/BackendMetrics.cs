using Prometheus;

namespace SampleBackend;

/// <summary>
/// The backend's own count of requests served, so a dashboard can set what each backend saw beside what
/// the balancer says it sent. Health probes and scrapes are left out, as the balancer leaves them out.
/// </summary>
public sealed class BackendMetrics
{
    private readonly Counter.Child[] _byStatus = new Counter.Child[600];
    private readonly Counter _requests;
    private readonly string _name;

    public BackendMetrics(BackendState state)
    {
        Registry = Metrics.NewCustomRegistry();
        _name = state.Name;
        _requests = Metrics.WithCustomRegistry(Registry).CreateCounter(
            "sample_backend_requests_total",
            "Requests this backend served, by status code (health probes and scrapes excluded).",
            new CounterConfiguration { LabelNames = ["backend", "code"] });
        _requests.WithLabels(_name, "200");
    }

    public CollectorRegistry Registry { get; }

    public void Count(int statusCode)
    {
        if ((uint)statusCode >= (uint)_byStatus.Length)
        {
            _requests.WithLabels(_name, statusCode.ToString(System.Globalization.CultureInfo.InvariantCulture)).Inc();
            return;
        }

        var child = _byStatus[statusCode] ??= _requests.WithLabels(_name, statusCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
        child.Inc();
    }
}
