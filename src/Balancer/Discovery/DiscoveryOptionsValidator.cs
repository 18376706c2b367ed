using Balancer.Configuration;

namespace Balancer.Discovery;

/// <summary>The <c>Balancer:Discovery</c> section.</summary>
internal sealed class DiscoveryOptionsValidator(OptionsSource source) : OptionsValidator<DiscoveryOptions>(source)
{
    protected override void Check(DiscoveryOptions options, OptionErrors errors)
    {
        errors.PositiveTimeSpan(options.RefreshPeriod);
        errors.PositiveTimeSpan(options.Timeout);
        for (var i = 0; i < options.NameServers.Count; i++)
        {
            if (!NameServer.TryParse(options.NameServers[i], out _))
            {
                errors.Add($"{nameof(options.NameServers)}:{i}", $"'{options.NameServers[i]}' is not an IP address or address:port");
            }
        }
    }
}
