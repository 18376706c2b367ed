namespace Balancer.AccessLog;

/// <summary>The <c>Balancer:AccessLog</c> section. Reloads live: a new path is opened, no path stops the log.</summary>
public sealed class AccessLogOptions
{
    public const string SectionName = "AccessLog";

    /// <summary>The value of <see cref="Path"/> that writes to the process's standard output.</summary>
    public const string StandardOutput = "stdout";

    /// <summary>
    /// File the access log is appended to (created if missing; its directory must exist), or <c>stdout</c>.
    /// Unset or empty: no access log, and nothing is done per request.
    /// </summary>
    public string? Path { get; set; }

    /// <summary>
    /// Lines waiting for the writer at most. A disk too slow to keep up fills it, and further lines are
    /// dropped and counted (<c>balancer_access_log_dropped_total</c>) rather than holding up requests.
    /// Read at start-up.
    /// </summary>
    public int BufferLines { get; set; } = 16 * 1024;

    /// <summary>True when a log is wanted.</summary>
    public bool Enabled => !string.IsNullOrWhiteSpace(Path);
}
