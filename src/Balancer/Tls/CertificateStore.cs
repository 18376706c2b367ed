using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Balancer.Configuration;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Options;

namespace Balancer.Tls;

/// <summary>
/// The certificates of the <c>https://</c> listeners: chosen per connection by SNI, and replaced without a
/// restart when their files change.
/// </summary>
/// <remarks>
/// The files are read again on every change notice of their folders and once a second besides, because a
/// symlink swap (Kubernetes secrets, certbot's live/ folder) changes what a path points to without an event
/// on the file's own name. A pair is swapped in only when both files read, match each other and are valid
/// now. A failure is reported only once the files have stayed as they are for <see cref="SettlePeriod"/>:
/// renewal tools write the certificate and the key one after the other, and the pair seen in between (new
/// key, old certificate) is not a failure but a pair that is not complete yet.
/// </remarks>
internal sealed partial class CertificateStore : IHostedService, IDisposable
{
    public static readonly TimeSpan SettlePeriod = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(150);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.OrdinalIgnoreCase);
    private readonly IOptionsMonitor<BalancerOptions> _options;
    private readonly ConfigReloadTracker _tracker;
    private readonly TimeProvider _time;
    private readonly string _baseDirectory;
    private readonly ILogger<CertificateStore> _logger;
    private readonly List<FileSystemWatcher> _watchers = [];
    private HashSet<string> _watchedDirectories = new(StringComparer.Ordinal);
    private IDisposable? _optionsSubscription;
    private ITimer? _poll;
    private ITimer? _debounce;
    private TimeSpan _pollPeriod = Timeout.InfiniteTimeSpan;
    private volatile Selection _selection = Selection.Empty;

    public CertificateStore(IOptionsMonitor<BalancerOptions> options, ConfigReloadTracker tracker, TimeProvider time, TlsStartup startup, ILogger<CertificateStore> logger)
    {
        _options = options;
        _tracker = tracker;
        _time = time;
        _baseDirectory = startup.BaseDirectory;
        _logger = logger;
        foreach (var certificate in startup.Certificates)
        {
            _entries[certificate.Source.Name] = new Entry(certificate.Source) { Current = certificate, LoadedContent = Fingerprint(certificate.Source) };
        }

        Publish();
    }

    /// <summary>
    /// The sources named by <paramref name="tls"/>, paths resolved against <paramref name="baseDirectory"/>.
    /// </summary>
    public static List<CertificateSource> Sources(TlsOptions tls, string baseDirectory)
    {
        var key = $"{BalancerOptions.SectionName}:{TlsOptions.SectionName}";
        var sources = new List<CertificateSource>();
        if (!string.IsNullOrWhiteSpace(tls.CertificatePath) && !string.IsNullOrWhiteSpace(tls.KeyPath))
        {
            sources.Add(new CertificateSource(CertificateSource.DefaultName, key + ":CertificatePath", Path.GetFullPath(tls.CertificatePath, baseDirectory), key + ":KeyPath", Path.GetFullPath(tls.KeyPath, baseDirectory)));
        }

        foreach (var (host, files) in tls.Sni)
        {
            if (!string.IsNullOrWhiteSpace(files.CertificatePath) && !string.IsNullOrWhiteSpace(files.KeyPath))
            {
                sources.Add(new CertificateSource(host.ToLowerInvariant(), $"{key}:Sni:{host}:CertificatePath", Path.GetFullPath(files.CertificatePath, baseDirectory), $"{key}:Sni:{host}:KeyPath", Path.GetFullPath(files.KeyPath, baseDirectory)));
            }
        }

        return sources;
    }

    /// <summary>Kestrel's per-connection TLS callback: the certificate for the name the client asked for.</summary>
    public ValueTask<SslServerAuthenticationOptions> OnConnection(TlsHandshakeCallbackContext context)
    {
        var certificate = Select(context.ClientHelloInfo.ServerName);
        return ValueTask.FromResult(_options.CurrentValue.Tls.StrictCiphers ? certificate.StrictOptions : certificate.Options);
    }

    /// <summary>The exact name's certificate, else the wildcard one for its parent domain, else the default.</summary>
    public ServerCertificate Select(string? serverName)
    {
        var selection = _selection;
        if (!string.IsNullOrEmpty(serverName))
        {
            if (selection.Exact.TryGetValue(serverName, out var exact))
            {
                return exact;
            }

            var dot = serverName.IndexOf('.', StringComparison.Ordinal);
            if (dot > 0 && selection.Wildcards.TryGetValue(serverName[dot..], out var wildcard))
            {
                return wildcard;
            }
        }

        return selection.Default ?? throw new InvalidOperationException("No default certificate is loaded (Balancer:Tls:CertificatePath).");
    }

    /// <summary>Every configured certificate: the one serving and the last rejected replacement, for /status and /metrics.</summary>
    public IReadOnlyList<CertificateState> Snapshot()
    {
        lock (_gate)
        {
            return [.. _entries.Values.OrderBy(e => e.Source.Name == CertificateSource.DefaultName ? 0 : 1).ThenBy(e => e.Source.Name, StringComparer.Ordinal)
                .Select(e => new CertificateState(e.Source, e.Current, e.Reported ? e.Error : null))];
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _debounce = _time.CreateTimer(_ => Check(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _poll = _time.CreateTimer(_ => Check(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _optionsSubscription = _options.OnChange(_ => Check());
        lock (_gate)
        {
            Watch();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _optionsSubscription?.Dispose();
            _poll?.Dispose();
            _debounce?.Dispose();
            foreach (var watcher in _watchers)
            {
                watcher.Dispose();
            }

            _watchers.Clear();
        }
    }

    /// <summary>Whether the files are read once a second besides their folders' change notices: only while there is a certificate.</summary>
    internal bool Polling
    {
        get
        {
            lock (_gate)
            {
                return _pollPeriod != Timeout.InfiniteTimeSpan;
            }
        }
    }

    /// <summary>Reads every pair again and swaps in, or reports, what changed.</summary>
    internal void Check()
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var changed = SyncSources();
            foreach (var entry in _entries.Values)
            {
                changed |= Check(entry, now);
            }

            if (changed)
            {
                Publish();
                Watch();
            }
        }
    }

    private bool Check(Entry entry, DateTimeOffset now)
    {
        var content = Fingerprint(entry.Source);
        if (content == entry.LoadedContent)
        {
            entry.SeenContent = null;
            entry.Error = null;
            entry.Reported = false;
            return false;
        }

        if (content != entry.SeenContent)
        {
            entry.SeenContent = content;
            entry.SeenSince = now;
            entry.Reported = false;
        }

        var (certificate, error, _) = ServerCertificate.Load(entry.Source, now);
        if (certificate is not null)
        {
            entry.Current = certificate;
            entry.LoadedContent = content;
            entry.SeenContent = null;
            entry.Error = null;
            entry.Reported = false;
            LogLoaded(_logger, entry.Source.Name, certificate.Host, certificate.Serial, certificate.NotAfter);
            _tracker.Reloaded();
            return true;
        }

        entry.Error = error;
        if (!entry.Reported && now - entry.SeenSince >= SettlePeriod)
        {
            entry.Reported = true;
            LogRejected(_logger, entry.Source.Name, error!);
            _tracker.Rejected(error!);
        }

        return false;
    }

    /// <summary>Follows the config: certificates added, removed or pointed at other files.</summary>
    private bool SyncSources()
    {
        var sources = Sources(_options.CurrentValue.Tls, _baseDirectory);
        var changed = false;
        foreach (var name in _entries.Keys.Except(sources.Select(s => s.Name), StringComparer.OrdinalIgnoreCase).ToList())
        {
            _entries.Remove(name);
            changed = true;
        }

        foreach (var source in sources)
        {
            if (!_entries.TryGetValue(source.Name, out var entry))
            {
                _entries[source.Name] = new Entry(source);
                changed = true;
            }
            else if (entry.Source != source)
            {
                entry.Source = source;
                entry.LoadedContent = null;
                changed = true;
            }
        }

        return changed;
    }

    private void Publish()
    {
        Entry? fallback = null;
        var exact = new Dictionary<string, ServerCertificate>(StringComparer.OrdinalIgnoreCase);
        var wildcards = new Dictionary<string, ServerCertificate>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in _entries.Values)
        {
            if (entry.Current is not { } certificate)
            {
                continue;
            }

            var name = entry.Source.Name;
            if (name == CertificateSource.DefaultName)
            {
                fallback = entry;
            }
            else if (name.StartsWith("*.", StringComparison.Ordinal))
            {
                wildcards[name[1..]] = certificate;
            }
            else
            {
                exact[name] = certificate;
            }
        }

        _selection = new Selection(fallback?.Current, exact, wildcards);
    }

    /// <summary>Watches the folders of the files and of what their links point to; polling covers the rest.</summary>
    private void Watch()
    {
        // Without a certificate there is nothing to read: a balancer on plain HTTP does not wake every second for
        // it, and a certificate a reload adds arrives with the options' change notice, which arms the poll here.
        var poll = _entries.Count > 0 ? PollInterval : Timeout.InfiniteTimeSpan;
        if (_poll is not null && poll != _pollPeriod)
        {
            _pollPeriod = poll;
            _poll.Change(poll, poll);
        }

        var directories = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in _entries.Values)
        {
            foreach (var path in new[] { entry.Source.CertificatePath, entry.Source.KeyPath })
            {
                AddDirectory(directories, path);
                try
                {
                    if (new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true) is { } target)
                    {
                        AddDirectory(directories, target.FullName);
                    }
                }
                catch (IOException)
                {
                }
            }
        }

        if (directories.SetEquals(_watchedDirectories) || _debounce is null)
        {
            return;
        }

        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }

        _watchers.Clear();
        _watchedDirectories = directories;
        foreach (var directory in directories)
        {
            try
            {
                var watcher = new FileSystemWatcher(directory)
                {
                    NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.DirectoryName | NotifyFilters.Size | NotifyFilters.CreationTime,
                };
                FileSystemEventHandler changed = (_, _) => _debounce?.Change(Debounce, Timeout.InfiniteTimeSpan);
                watcher.Changed += changed;
                watcher.Created += changed;
                watcher.Deleted += changed;
                watcher.Renamed += (_, _) => _debounce?.Change(Debounce, Timeout.InfiniteTimeSpan);
                watcher.EnableRaisingEvents = true;
                _watchers.Add(watcher);
            }
            catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException)
            {
                // The poll still notices the change, only later.
            }
        }

        static void AddDirectory(HashSet<string> directories, string path)
        {
            if (Path.GetDirectoryName(path) is { Length: > 0 } directory && Directory.Exists(directory))
            {
                directories.Add(directory);
            }
        }
    }

    /// <summary>What the two files hold now, as one hash; a file that cannot be read is part of the answer.</summary>
    private static string Fingerprint(CertificateSource source)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var path in new[] { source.CertificatePath, source.KeyPath })
        {
            try
            {
                hash.AppendData(File.ReadAllBytes(path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                hash.AppendData(System.Text.Encoding.UTF8.GetBytes("unreadable:" + e.Message));
            }

            hash.AppendData([0]);
        }

        return Convert.ToHexString(hash.GetHashAndReset());
    }

    [LoggerMessage(EventId = 1801, Level = LogLevel.Information, Message = "Certificate {Name} loaded: {Host}, serial {Serial}, valid until {NotAfter:u}")]
    private static partial void LogLoaded(ILogger logger, string name, string host, string serial, DateTimeOffset notAfter);

    [LoggerMessage(EventId = 1802, Level = LogLevel.Error, Message = "Certificate {Name} not replaced, the previous one keeps serving: {Reason}")]
    private static partial void LogRejected(ILogger logger, string name, string reason);

    private sealed class Entry(CertificateSource source)
    {
        public CertificateSource Source { get; set; } = source;

        public ServerCertificate? Current { get; set; }

        public string? LoadedContent { get; set; }

        public string? SeenContent { get; set; }

        public DateTimeOffset SeenSince { get; set; }

        public string? Error { get; set; }

        public bool Reported { get; set; }
    }

    private sealed record Selection(ServerCertificate? Default, Dictionary<string, ServerCertificate> Exact, Dictionary<string, ServerCertificate> Wildcards)
    {
        public static readonly Selection Empty = new(null, [], []);
    }
}

/// <summary>A configured certificate: the one serving (null if none could be loaded yet) and the reason its replacement was rejected.</summary>
internal sealed record CertificateState(CertificateSource Source, ServerCertificate? Current, string? Error);

/// <summary>
/// The certificates loaded and checked before the host is built, the CA bundle trusted for backends, and the
/// folder relative paths start from.
/// </summary>
internal sealed record TlsStartup(string BaseDirectory, IReadOnlyList<ServerCertificate> Certificates, X509Certificate2Collection? BackendRoots)
{
    /// <summary>Loads every configured pair and the CA bundle; the errors name the key and the file.</summary>
    public static (TlsStartup Startup, IReadOnlyList<string> Errors) Load(TlsOptions tls, string baseDirectory, DateTimeOffset now)
    {
        var certificates = new List<ServerCertificate>();
        var errors = new List<string>();
        X509Certificate2Collection? roots = null;
        if (!string.IsNullOrWhiteSpace(tls.BackendCaBundlePath))
        {
            var key = $"{BalancerOptions.SectionName}:{TlsOptions.SectionName}:BackendCaBundlePath";
            var path = Path.GetFullPath(tls.BackendCaBundlePath, baseDirectory);
            roots = [];
            try
            {
                roots.ImportFromPemFile(path);
                if (roots.Count == 0)
                {
                    errors.Add($"{key}: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
            {
                errors.Add($"{key}: cannot read the CA bundle {path}: {e.Message}");
            }
        }

        foreach (var source in CertificateStore.Sources(tls, baseDirectory))
        {
            var (certificate, error, _) = ServerCertificate.Load(source, now);
            if (certificate is null)
            {
                errors.Add(error!);
            }
            else
            {
                certificates.Add(certificate);
            }
        }

        return (new TlsStartup(baseDirectory, certificates, roots), errors);
    }
}
