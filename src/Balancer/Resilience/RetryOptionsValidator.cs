using Balancer.Configuration;

namespace Balancer.Resilience;

/// <summary>The <c>Balancer:Retry</c> section.</summary>
internal sealed class RetryOptionsValidator(OptionsSource source) : OptionsValidator<RetryOptions>(source)
{
    protected override void Check(RetryOptions options, OptionErrors errors)
    {
        errors.WholeNumber(options.MaxAttempts, 0, 10);
        errors.WholeNumber(options.MaxBufferedBodyBytes, 0, 64L * 1024 * 1024);
    }
}

/// <summary>The <c>Balancer:CircuitBreaker</c> section.</summary>
internal sealed class CircuitBreakerOptionsValidator(OptionsSource source) : OptionsValidator<CircuitBreakerOptions>(source)
{
    protected override void Check(CircuitBreakerOptions options, OptionErrors errors)
    {
        errors.WholeNumber(options.MinimumThroughput, 2, int.MaxValue);
        errors.PositiveTimeSpan(options.SamplingDuration);
        errors.PositiveTimeSpan(options.BreakDuration);
        errors.PositiveTimeSpan(options.AttemptTimeout);
        errors.Fraction(options.FailureRatio, zeroAllowed: false);
    }
}
