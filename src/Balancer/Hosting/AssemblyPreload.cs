using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace Balancer.Hosting;

/// <summary>
/// Loads, at start-up, every assembly the balancer references (directly or not). The runtime keeps a
/// descriptor open for each loaded assembly and loads them lazily, often on an error path (reason
/// phrases, exception messages): at the open-file limit such a load fails, and a type whose static
/// constructor failed stays broken for the life of the process. Loaded up front, their descriptors are
/// counted in the start-up figure the connection limit is derived from.
/// </summary>
internal static class AssemblyPreload
{
    // A reference a trimmed build removed fails to load, which the loop below catches and skips; Native AOT returns first.
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Missing references are caught and skipped; nothing else depends on them.")]
    public static int Run()
    {
        // A Native AOT build has no assemblies to load: everything is in the executable, opened once.
        if (!RuntimeFeature.IsDynamicCodeSupported)
        {
            return 0;
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Queue<Assembly>();
        foreach (var loaded in AppDomain.CurrentDomain.GetAssemblies())
        {
            seen.Add(loaded.GetName().Name ?? string.Empty);
            pending.Enqueue(loaded);
        }

        var count = 0;
        while (pending.TryDequeue(out var assembly))
        {
            foreach (var reference in assembly.GetReferencedAssemblies())
            {
                if (!seen.Add(reference.Name ?? string.Empty))
                {
                    continue;
                }

                try
                {
                    pending.Enqueue(Assembly.Load(reference));
                    count++;
                }
                catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
                {
                    // A reference that is never used at run time (a platform-specific facade): nothing to keep.
                }
            }
        }

        return count;
    }
}
