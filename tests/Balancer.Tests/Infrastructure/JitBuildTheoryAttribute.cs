namespace Balancer.Tests.Infrastructure;

/// <summary>
/// A test of what the JIT compiles in the balancer's process: skipped, saying why, when the process tests run a Native AOT
/// executable (<see cref="BalancerProcess.ExecutableVariable"/>), which compiles nothing at run time.
/// </summary>
internal sealed class JitBuildTheoryAttribute : TheoryAttribute
{
    public JitBuildTheoryAttribute()
    {
        if (Environment.GetEnvironmentVariable(BalancerProcess.ExecutableVariable) is { Length: > 0 })
        {
            Skip = $"Reads the JIT's summary of what it compiled; {BalancerProcess.ExecutableVariable} runs a Native AOT build.";
        }
    }
}
