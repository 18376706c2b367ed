namespace Balancer.Hosting;

/// <summary>
/// Runs socket completions and Kestrel's continuations on the I/O threads instead of queueing each one to
/// the thread pool (<c>Balancer:InlineCompletions</c>, on by default).
/// </summary>
/// <remarks>
/// A proxied request is a chain of short non-blocking steps on two sockets; by default every read or write
/// that completes hops from the epoll thread to a pool thread, a context switch each time; running them
/// inline saves a good part of the CPU per request (docs/benchmarks.md). The price is the usual one of inline completions:
/// code that blocks would hold up every connection of its I/O thread. Nothing on the request path blocks
/// (no locks held across awaits, no synchronous I/O); operators who add blocking extensions can turn it
/// off. Kestrel's part is a setting of one host; the sockets' part is a runtime variable that every socket
/// and every child of the process sees, so only the balancer's own <c>Main</c> sets it, never a host that
/// tests or tools build in their own process. An operator's own <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c> wins.
/// </remarks>
internal static class InlineIoScheduling
{
    public const string Key = "Balancer:InlineCompletions";
    public const string RuntimeVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Kestrel's continuations inline, for the host being built.</summary>
    public static void Apply(WebApplicationBuilder builder)
    {
        if (Enabled(builder.Configuration))
        {
            builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
        }
    }

    /// <summary>
    /// Socket completions inline, for the whole process. The runtime reads the variable once, when the first
    /// socket is created, so this must run before the host starts.
    /// </summary>
    public static void ApplyToProcess(IConfiguration configuration)
    {
        if (Environment.GetEnvironmentVariable(RuntimeVariable) is null && Enabled(configuration))
        {
            Environment.SetEnvironmentVariable(RuntimeVariable, "1");
        }
    }

    private static bool Enabled(IConfiguration configuration) =>
        Environment.GetEnvironmentVariable(RuntimeVariable) is { } runtime ? runtime == "1" : configuration.GetValue(Key, defaultValue: true);
}
