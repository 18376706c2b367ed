using System.Globalization;
using System.Net;
using Balancer.LoadBalancing;
using Microsoft.Extensions.Configuration;

namespace Balancer.Configuration;

/// <summary>
/// What a candidate config would change against the one in force, per cluster: destinations added and
/// removed, weights, addresses, policy, health settings; for an IpHash cluster the share of client addresses
/// that would land on another destination, and for a RoundRobin cluster the new split.
/// </summary>
/// <remarks>
/// The IpHash share is measured, not derived: a fixed sample of IPv4 and IPv6 addresses goes through the
/// policy's own hashing (<see cref="MaglevTable.Picker"/>: rendezvous, or for a large cluster the table the policy builds
/// over its configured destinations) under both destination sets, every destination available. File weights only: runtime
/// overrides are the operator's and stay in force across the reload either way.
/// </remarks>
public static class ConfigPreview
{
    /// <summary>Addresses in the IpHash sample, half IPv4, half IPv6.</summary>
    public const int SampleSize = 200_000;

    public sealed record Report(IReadOnlyList<ClusterChanges> Clusters)
    {
        public bool HasChanges => Clusters.Any(c => c.Changes.Count > 0);
    }

    /// <param name="Id">The cluster id.</param>
    /// <param name="Changes">One line per change, for people.</param>
    /// <param name="IpHashMovedPercent">For an IpHash cluster (before and after), the share of client addresses that move.</param>
    /// <param name="Split">For a RoundRobin cluster, each destination's share of requests after the change, in percent.</param>
    public sealed record ClusterChanges(string Id, IReadOnlyList<string> Changes, double? IpHashMovedPercent, IReadOnlyDictionary<string, double>? Split);

    public static Report Compare(IConfiguration current, IConfiguration candidate)
    {
        var before = Clusters(current);
        var after = Clusters(candidate);
        List<ClusterChanges> clusters = [];
        foreach (var id in before.Keys.Union(after.Keys, StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal))
        {
            before.TryGetValue(id, out var old);
            after.TryGetValue(id, out var now);
            clusters.Add(Compare(id, old, now));
        }

        return new Report(clusters);
    }

    /// <summary>The share (0-1) of sampled client addresses whose destination differs between the two sets.</summary>
    public static double IpHashMoved(IReadOnlyDictionary<string, int> before, IReadOnlyDictionary<string, int> after)
    {
        var (oldIds, oldHashes, oldWeights) = Hashed(before);
        var (newIds, newHashes, newWeights) = Hashed(after);
        if (oldIds.Length == 0 || newIds.Length == 0)
        {
            return 1;
        }

        var oldPick = MaglevTable.Picker(oldHashes, oldWeights);
        var newPick = MaglevTable.Picker(newHashes, newWeights);
        var random = new Random(20_240_601);
        Span<byte> v4 = stackalloc byte[4];
        Span<byte> v6 = stackalloc byte[16];
        var moved = 0;
        for (var i = 0; i < SampleSize; i++)
        {
            Span<byte> bytes = i % 2 == 0 ? v4 : v6;
            random.NextBytes(bytes);
            var key = RendezvousHash.HashAddress(new IPAddress(bytes));
            var was = oldIds[oldPick(key)];
            var will = newIds[newPick(key)];
            if (!string.Equals(was, will, StringComparison.OrdinalIgnoreCase))
            {
                moved++;
            }
        }

        return moved / (double)SampleSize;
    }

    /// <summary>The report as text, one line per change, as <c>--check-config NEW --against CURRENT</c> prints it.</summary>
    public static string Format(Report report)
    {
        var text = new System.Text.StringBuilder();
        foreach (var cluster in report.Clusters)
        {
            text.Append(CultureInfo.InvariantCulture, $"Cluster {cluster.Id}:").AppendLine();
            if (cluster.Changes.Count == 0)
            {
                text.AppendLine("  no change");
            }

            foreach (var change in cluster.Changes)
            {
                text.Append("  ").AppendLine(change);
            }

            if (cluster.IpHashMovedPercent is { } moved)
            {
                text.Append(CultureInfo.InvariantCulture, $"  IpHash: {moved:0.0}% of client addresses would move to another destination (sample of {SampleSize:N0} IPv4 and IPv6 addresses)").AppendLine();
            }

            if (cluster.Split is { } split)
            {
                text.Append("  RoundRobin split: ").AppendLine(string.Join(", ", split.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Key} {s.Value:0.#}%"))));
            }
        }

        return text.ToString();
    }

    private static ClusterChanges Compare(string id, Cluster? old, Cluster? now)
    {
        List<string> changes = [];
        if (now is null)
        {
            changes.Add($"cluster removed ({old!.Destinations.Count} destination(s))");
            return new ClusterChanges(id, changes, null, null);
        }

        if (old is null)
        {
            changes.Add($"cluster added: policy {now.Policy}, destinations {string.Join(", ", now.Destinations.Keys)}");
        }
        else
        {
            if (!string.Equals(old.Policy, now.Policy, StringComparison.Ordinal))
            {
                changes.Add($"policy {old.Policy} -> {now.Policy}");
            }

            foreach (var (destination, weight) in now.Destinations)
            {
                if (!old.Destinations.TryGetValue(destination, out var was))
                {
                    changes.Add($"destination {destination} added (weight {weight}, {now.Addresses[destination]})");
                }
                else if (was != weight)
                {
                    changes.Add($"destination {destination} weight {was} -> {weight}");
                }

                if (old.Addresses.TryGetValue(destination, out var address) && !string.Equals(address, now.Addresses[destination], StringComparison.Ordinal))
                {
                    changes.Add($"destination {destination} address {address} -> {now.Addresses[destination]}");
                }
            }

            foreach (var destination in old.Destinations.Keys.Where(d => !now.Destinations.ContainsKey(d)))
            {
                changes.Add($"destination {destination} removed");
            }

            foreach (var key in old.Health.Keys.Union(now.Health.Keys, StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal))
            {
                var was = old.Health.GetValueOrDefault(key);
                var will = now.Health.GetValueOrDefault(key);
                if (!string.Equals(was, will, StringComparison.OrdinalIgnoreCase))
                {
                    changes.Add($"{key}: {was ?? "(unset)"} -> {will ?? "(unset)"}");
                }
            }
        }

        double? moved = old is not null && old.Policy == PolicyNames.IpHash && now.Policy == PolicyNames.IpHash
            ? Math.Round(100 * IpHashMoved(old.Destinations, now.Destinations), 2)
            : null;
        Dictionary<string, double>? split = null;
        if (now.Policy == PolicyNames.RoundRobin)
        {
            var total = now.Destinations.Values.Sum();
            split = now.Destinations.ToDictionary(d => d.Key, d => Math.Round(100.0 * d.Value / total, 2), StringComparer.OrdinalIgnoreCase);
        }

        return new ClusterChanges(id, changes, moved, split);
    }

    private static (string[] Ids, ulong[] Hashes, int[] Weights) Hashed(IReadOnlyDictionary<string, int> destinations)
    {
        var ids = destinations.Keys.ToArray();
        return (ids, [.. ids.Select(RendezvousHash.HashId)], [.. ids.Select(id => destinations[id])]);
    }

    private static Dictionary<string, Cluster> Clusters(IConfiguration config)
    {
        var clusters = new Dictionary<string, Cluster>(StringComparer.OrdinalIgnoreCase);
        foreach (var section in config.GetSection("ReverseProxy:Clusters").GetChildren())
        {
            var destinations = new SortedDictionary<string, int>(StringComparer.Ordinal);
            var addresses = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var destination in section.GetSection("Destinations").GetChildren())
            {
                DestinationWeight.TryParse(destination["Metadata:" + DestinationWeight.MetadataKey] ?? "1", out var weight, out _);
                destinations[destination.Key] = weight;
                addresses[destination.Key] = destination["Address"] ?? "";
            }

            var health = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            foreach (var (key, value) in section.GetSection("HealthCheck").AsEnumerable(makePathsRelative: true))
            {
                if (value is not null)
                {
                    health["HealthCheck:" + key] = value;
                }
            }

            clusters[section.Key] = new Cluster(PolicyNames.Canonical(section["LoadBalancingPolicy"]), destinations, addresses, health);
        }

        return clusters;
    }

    private sealed record Cluster(string Policy, IReadOnlyDictionary<string, int> Destinations, IReadOnlyDictionary<string, string> Addresses, IReadOnlyDictionary<string, string?> Health);
}
