using System.Collections.Concurrent;

namespace Balancer.Logging;

/// <summary>
/// At most <c>limit</c> log lines per <c>window</c> for each kind of event; the rest are counted, and the
/// count is handed to the next line let through, so the log still says how many were left out. What a
/// stream of bad requests costs on disk is then bounded by time, not by what a client sends.
/// </summary>
/// <remarks>
/// Callers key it by a small fixed set (an enum, a constant): every key keeps a few bytes for the life of
/// the process.
/// </remarks>
internal sealed class LogRateLimiter<TKey>(TimeProvider time, int limit, TimeSpan window)
    where TKey : notnull
{
    private readonly ConcurrentDictionary<TKey, Window> _windows = new();

    /// <summary>
    /// True when a line for <paramref name="key"/> may be written now; <paramref name="suppressed"/> is then
    /// the number of lines for it held back since the last one written.
    /// </summary>
    public bool TryAcquire(TKey key, out long suppressed)
    {
        var state = _windows.GetOrAdd(key, static _ => new Window());
        var now = time.GetTimestamp();
        lock (state)
        {
            if (state.Used == 0 || time.GetElapsedTime(state.Start, now) >= window)
            {
                state.Start = now;
                state.Used = 0;
            }

            if (state.Used < limit)
            {
                state.Used++;
                suppressed = state.Suppressed;
                state.Suppressed = 0;
                return true;
            }

            state.Suppressed++;
            suppressed = 0;
            return false;
        }
    }

    private sealed class Window
    {
        public long Start;
        public int Used;
        public long Suppressed;
    }
}
