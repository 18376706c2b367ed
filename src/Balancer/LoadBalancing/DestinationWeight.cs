using System.Globalization;
using Yarp.ReverseProxy.Configuration;

namespace Balancer.LoadBalancing;

/// <summary>Reads a destination's weight from its <c>Metadata.Weight</c> (default 1).</summary>
public static class DestinationWeight
{
    public const string MetadataKey = "Weight";

    /// <summary>The upper bound keeps a weighted round-robin schedule (sum of reduced weights) small.</summary>
    public const int Max = 1000;

    public static int Of(DestinationConfig config) =>
        TryParse(config.Metadata, out var weight, out _) ? weight : 1;

    /// <summary>Parses the weight; <paramref name="error"/> says why a present value is unusable.</summary>
    public static bool TryParse(IReadOnlyDictionary<string, string>? metadata, out int weight, out string? error)
    {
        weight = 1;
        error = null;
        if (metadata is null || !metadata.TryGetValue(MetadataKey, out var raw))
        {
            return true;
        }

        return TryParse(raw, out weight, out error);
    }

    public static bool TryParse(string? raw, out int weight, out string? error)
    {
        error = null;
        if (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out weight) || weight < 1 || weight > Max)
        {
            weight = 1;
            error = $"'{raw}' is not a whole number from 1 to {Max}";
            return false;
        }

        return true;
    }
}
