using Balancer.Telemetry;
using Prometheus;

namespace Balancer.Tls;

/// <summary>Certificate expiry and rejected replacements on <c>/metrics</c>, read from the store when scraped.</summary>
internal sealed class CertificateMetrics
{
    private static readonly string[] Labels = ["name", "host"];
    private readonly CertificateStore _store;
    private readonly Gauge _notAfter;
    private readonly Gauge _rejected;
    private readonly HashSet<(string Name, string Host)> _exported = [];

    public CertificateMetrics(BalancerMetricsRegistry metrics, CertificateStore store)
    {
        _store = store;
        _notAfter = metrics.Factory.CreateGauge(
            "balancer_tls_certificate_not_after_seconds",
            "When the certificate serving under this name (default, or the SNI host) expires, in Unix seconds.",
            new GaugeConfiguration { LabelNames = Labels });
        _rejected = metrics.Factory.CreateGauge(
            "balancer_tls_certificate_rejected",
            "1 while the replacement files of this certificate are rejected (the previous certificate keeps serving), else 0.",
            new GaugeConfiguration { LabelNames = Labels });
        metrics.Registry.AddBeforeCollectCallback(Refresh);
    }

    private void Refresh()
    {
        lock (_exported)
        {
            var seen = new HashSet<(string Name, string Host)>();
            foreach (var state in _store.Snapshot())
            {
                if (state.Current is not { } certificate)
                {
                    continue;
                }

                var labels = (state.Source.Name, certificate.Host);
                seen.Add(labels);
                _notAfter.WithLabels(labels.Name, labels.Host).Set(certificate.NotAfter.ToUnixTimeSeconds());
                _rejected.WithLabels(labels.Name, labels.Host).Set(state.Error is null ? 0 : 1);
            }

            foreach (var gone in _exported.Except(seen).ToList())
            {
                _notAfter.RemoveLabelled(gone.Name, gone.Host);
                _rejected.RemoveLabelled(gone.Name, gone.Host);
                _exported.Remove(gone);
            }

            _exported.UnionWith(seen);
        }
    }
}
