using System.Collections.Concurrent;
using System.Net;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Balancer.Discovery;

/// <summary>
/// The DNS names of discovered destinations, each looked up every <see cref="DiscoveryOptions.RefreshPeriod"/>
/// for as long as the process runs. Service discovery drops its providers when nobody has asked for a while,
/// and YARP asks only when something changed: the watch therefore lives here, and the change token it hands
/// out fires when, and only when, a name's set of addresses differs from the one served.
/// </summary>
internal sealed partial class DnsNames : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, Name> _names = new(StringComparer.OrdinalIgnoreCase);
    private readonly CancellationTokenSource _stopping = new();
    private readonly DnsLookup _lookup;
    private readonly TimeSpan _refreshPeriod;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    public DnsNames(DnsLookup lookup, IOptions<Configuration.BalancerOptions> options, TimeProvider time, ILogger<DnsNames> logger)
    {
        _lookup = lookup;
        _refreshPeriod = options.Value.Discovery.RefreshPeriod;
        _time = time;
        _logger = logger;
    }

    /// <summary>The addresses of <paramref name="host"/> now (looked up on the first call) and a token that fires when they change.</summary>
    public Task<(IReadOnlyList<IPAddress> Addresses, IChangeToken Changed)> CurrentAsync(string host, CancellationToken cancellationToken) =>
        _names.GetOrAdd(host, static (host, self) => new Name(self, host), this).CurrentAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        foreach (var name in _names.Values)
        {
            await name.DisposeAsync();
        }

        _stopping.Dispose();
    }

    [LoggerMessage(EventId = 1901, Level = LogLevel.Information, Message = "DNS name {Host}: {Count} addresses ({Addresses}); each is a destination of its own")]
    private static partial void LogAddresses(ILogger logger, string host, int count, string addresses);

    [LoggerMessage(EventId = 1902, Level = LogLevel.Warning, Message = "DNS name {Host}: lookup failed ({Reason}); keeping the {Count} addresses of the last lookup that worked")]
    private static partial void LogLookupFailed(ILogger logger, string host, string reason, int count);

    private sealed class Name : IAsyncDisposable
    {
        private readonly DnsNames _owner;
        private readonly string _host;
        private readonly Lock _lock = new();
        private readonly SemaphoreSlim _first = new(1, 1);
        private ITimer? _refresh;
        private IReadOnlyList<IPAddress>? _addresses;
        private CancellationTokenSource _changed = new();

        public Name(DnsNames owner, string host)
        {
            _owner = owner;
            _host = host;
        }

        public async Task<(IReadOnlyList<IPAddress>, IChangeToken)> CurrentAsync(CancellationToken cancellationToken)
        {
            if (Volatile.Read(ref _addresses) is null)
            {
                await _first.WaitAsync(cancellationToken);
                try
                {
                    if (_addresses is null)
                    {
                        Update(await LookupAsync(cancellationToken) ?? []);
                        _refresh = _owner._time.CreateTimer(static state => _ = ((Name)state!).RefreshAsync(), this, _owner._refreshPeriod, _owner._refreshPeriod);
                    }
                }
                finally
                {
                    _first.Release();
                }
            }

            lock (_lock)
            {
                return (_addresses!, new CancellationChangeToken(_changed.Token));
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_refresh is not null)
            {
                await _refresh.DisposeAsync();
            }

            _first.Dispose();
        }

        private async Task RefreshAsync()
        {
            if (await LookupAsync(CancellationToken.None) is { } addresses)
            {
                Update(addresses);
            }
        }

        /// <summary>Serves <paramref name="addresses"/>; when they differ from those served, the handed-out token fires.</summary>
        private void Update(IReadOnlyList<IPAddress> addresses)
        {
            CancellationTokenSource? fire = null;
            lock (_lock)
            {
                if (_addresses is not null && _addresses.SequenceEqual(addresses))
                {
                    return;
                }

                _addresses = addresses;
                fire = _changed;
                _changed = new CancellationTokenSource();
            }

            LogAddresses(_owner._logger, _host, addresses.Count, string.Join(", ", addresses));
            // YARP then resolves the destinations again and applies the new set.
            fire.Cancel();
            fire.Dispose();
        }

        /// <summary>The addresses, or null when the lookup failed (logged).</summary>
        private async Task<IReadOnlyList<IPAddress>?> LookupAsync(CancellationToken cancellationToken)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _owner._stopping.Token);
            try
            {
                return await _owner._lookup.AddressesAsync(_host, linked.Token);
            }
            catch (DnsLookupException e)
            {
                LogLookupFailed(_owner._logger, _host, e.Message, _addresses?.Count ?? 0);
                return null;
            }
            catch (OperationCanceledException) when (_owner._stopping.IsCancellationRequested)
            {
                return null;
            }
        }
    }
}
