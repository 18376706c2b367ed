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
/// off. The runtime reads its variable once, when the first socket is created, so this must run before
/// the host starts; an operator's own <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c> wins.
/// </remarks>
internal static class InlineIoScheduling
{
    public const string Key = "Balancer:InlineCompletions";
    private const string RuntimeVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    public static void Apply(WebApplicationBuilder builder)
    {
        var runtime = Environment.GetEnvironmentVariable(RuntimeVariable);
        var enabled = runtime is null ? builder.Configuration.GetValue(Key, defaultValue: true) : runtime == "1";
        if (!enabled)
        {
            return;
        }

        if (runtime is null)
        {
            Environment.SetEnvironmentVariable(RuntimeVariable, "1");
        }

        builder.WebHost.UseSockets(sockets => sockets.UnsafePreferInlineScheduling = true);
    }
}
