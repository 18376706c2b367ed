using System.Globalization;

namespace Balancer.Management;

/// <summary>
/// The filter and page of a <c>GET /status</c>: <c>state</c> (a health, <c>Up</c>/<c>Down</c>/<c>Unknown</c>, or a
/// runtime state, <c>Active</c>/<c>Draining</c>/<c>Drained</c>/<c>Maintenance</c>), <c>name</c> (part of the
/// destination's id or address, any case), then <c>offset</c> and <c>limit</c> over the matching destinations
/// of each cluster, in id order. With thousands of destinations the status page asks for one page at a time.
/// </summary>
internal sealed record StatusQuery(string? State, string? Name, int Offset, int? Limit)
{
    public const int MaxLimit = 100_000;
    private const int MaxNameLength = 256;

    public static readonly string[] States = ["Up", "Down", "Unknown", "Active", "Draining", "Drained", "Maintenance"];

    public static StatusQuery All { get; } = new(null, null, 0, null);

    /// <summary>The query of the request, or the reason it is not one (named by its parameter).</summary>
    public static (StatusQuery? Query, string? Error) Parse(IQueryCollection query)
    {
        string? state = null;
        if (query.TryGetValue("state", out var stateValues) && !string.IsNullOrEmpty(stateValues.ToString()))
        {
            state = Array.Find(States, s => string.Equals(s, stateValues.ToString(), StringComparison.OrdinalIgnoreCase));
            if (state is null || stateValues.Count > 1)
            {
                return (null, $"state: '{stateValues}' is not one of {string.Join(", ", States)}");
            }
        }

        var name = query.TryGetValue("name", out var names) && !string.IsNullOrEmpty(names.ToString()) ? names.ToString() : null;
        if (name is not null && (names.Count > 1 || name.Length > MaxNameLength))
        {
            return (null, $"name: give one value of at most {MaxNameLength} characters");
        }

        if (!Whole(query, "offset", 0, int.MaxValue, out var offset, out var error) || !Whole(query, "limit", 1, MaxLimit, out var limit, out error))
        {
            return (null, error);
        }

        return (new StatusQuery(state, name, offset ?? 0, limit), null);
    }

    public bool Matches(string id, string address, string health, string runtimeState) =>
        (State is null || State == health || State == runtimeState)
        && (Name is null || id.Contains(Name, StringComparison.OrdinalIgnoreCase) || address.Contains(Name, StringComparison.OrdinalIgnoreCase));

    private static bool Whole(IQueryCollection query, string key, int min, int max, out int? value, out string? error)
    {
        value = null;
        error = null;
        if (!query.TryGetValue(key, out var values) || string.IsNullOrEmpty(values.ToString()))
        {
            return true;
        }

        if (values.Count == 1 && int.TryParse(values.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed >= min && parsed <= max)
        {
            value = parsed;
            return true;
        }

        error = $"{key}: '{values}' must be a whole number from {min} to {max}";
        return false;
    }
}
