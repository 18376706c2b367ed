using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Balancer.Configuration;

/// <summary>
/// Binds a candidate config section to its options class so that a value which does not convert leaves its
/// default and is remembered instead of ending the binding at the first one: the options validators then report
/// it among every other error. The binding itself is the caller's typed <c>Get&lt;T&gt;</c>, which the configuration
/// binding source generator compiles (no reflection, so it also runs in a Native AOT build).
/// </summary>
internal static class OptionsBinding
{
    /// <summary>The value types options classes hold, for the message of a value that does not convert to one.</summary>
    private static readonly Type[] ValueTypes = [typeof(bool), typeof(TimeSpan), typeof(int), typeof(long), typeof(double)];

    /// <summary>
    /// A new <typeparamref name="T"/> bound from <paramref name="section"/> by <paramref name="get"/>, and where its
    /// values came from. <paramref name="keyPrefix"/> names the keys in messages when the section is not where they
    /// were written.
    /// </summary>
    public static (T Options, OptionsSource Source) Bind<T>(IConfigurationSection section, Func<IConfiguration, T?> get, string? keyPrefix = null)
        where T : class, new()
    {
        var failed = new Dictionary<string, Type>(StringComparer.OrdinalIgnoreCase);
        T options;
        try
        {
            options = get(section) ?? new T();
        }
        catch (InvalidOperationException)
        {
            // The binder stops at the first value it cannot convert; each value is tried alone to find every one,
            // then the rest are bound without them.
            var values = Values(section);
            foreach (var value in values)
            {
                try
                {
                    get(InMemory([value]));
                }
                catch (InvalidOperationException e)
                {
                    failed[value.Key] = TypeNamedIn(e.Message);
                }
            }

            options = get(InMemory(values.Where(v => !failed.ContainsKey(v.Key)))) ?? new T();
        }

        return (options, new OptionsSource(keyPrefix ?? section.Path + ":", section, failed));
    }

    /// <summary>The failures of a validation result, none when it passed.</summary>
    public static IEnumerable<string> FailuresOrNone(this ValidateOptionsResult result) => result.Failed ? result.Failures : [];

    /// <summary>Every value below <paramref name="section"/>, keyed by its path relative to it.</summary>
    private static List<KeyValuePair<string, string?>> Values(IConfigurationSection section) =>
        [.. section.AsEnumerable(makePathsRelative: true).Where(v => v.Value is not null)];

    private static IConfigurationRoot InMemory(IEnumerable<KeyValuePair<string, string?>> values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    /// <summary>
    /// The type the binder's message names (<c>... to type 'System.TimeSpan'.</c>): the message is all the binder
    /// gives, and only these few types can fail to convert in the options classes.
    /// </summary>
    private static Type TypeNamedIn(string message) =>
        Array.Find(ValueTypes, t => message.Contains($"'{t.FullName}'", StringComparison.Ordinal)
            || message.Contains($"'{typeof(Nullable<>).FullName}[[{t.FullName}", StringComparison.Ordinal)) ?? typeof(string);
}

/// <summary>
/// Where an options object's values came from: the config keys that name them in messages, the text as written,
/// and which values did not convert to their property's type.
/// </summary>
internal sealed class OptionsSource(string keyPrefix, IConfigurationSection section, IReadOnlyDictionary<string, Type> failed)
{
    /// <summary>The section the options were bound from.</summary>
    public IConfigurationSection Section => section;

    /// <summary>The values that did not convert: their full key, the text as written, and the property's type.</summary>
    public IEnumerable<(string Key, string? Text, Type Type)> Failures => failed.Select(f => (Key(f.Key), Raw(f.Key), f.Value));

    /// <summary>The full config key of a property, e.g. <c>Balancer:Retry:MaxAttempts</c> for <c>MaxAttempts</c>.</summary>
    public string Key(string name) => keyPrefix + name;

    /// <summary>The text the property was given, or null when the config does not set it.</summary>
    public string? Raw(string name) => section[name];

    /// <summary>True when the property is set to text its type cannot hold.</summary>
    public bool Failed(string name) => failed.ContainsKey(name);

    /// <summary>The source of the nested options in property <paramref name="name"/>.</summary>
    public OptionsSource Nested(string name)
    {
        var prefix = name + ":";
        var nested = failed.Where(f => f.Key.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)).ToDictionary(f => f.Key[prefix.Length..], f => f.Value, StringComparer.OrdinalIgnoreCase);
        return new OptionsSource(keyPrefix + prefix, section.GetSection(name), nested);
    }

    /// <summary>A new list of errors for one validation.</summary>
    public OptionErrors Errors() => new(this);
}
