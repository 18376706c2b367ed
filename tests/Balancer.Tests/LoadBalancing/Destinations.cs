using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Model;

namespace Balancer.Tests.LoadBalancing;

internal static class Destinations
{
    public static DestinationState[] Make(params (string Id, int Weight)[] destinations) =>
        [.. destinations.Select(d => new DestinationState(d.Id, new DestinationModel(new DestinationConfig
        {
            Address = $"http://127.0.0.1/{d.Id}",
            Metadata = new Dictionary<string, string> { ["Weight"] = d.Weight.ToString(System.Globalization.CultureInfo.InvariantCulture) },
        })))];

    public static Dictionary<string, int> Count(int picks, Func<DestinationState> pick)
    {
        var counts = new Dictionary<string, int>();
        for (var i = 0; i < picks; i++)
        {
            var id = pick().DestinationId;
            counts[id] = counts.GetValueOrDefault(id) + 1;
        }

        return counts;
    }
}
