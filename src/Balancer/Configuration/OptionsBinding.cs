using System.Collections;
using System.Reflection;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Balancer.Configuration;

/// <summary>
/// Binds a candidate config section to its options class the way <see cref="ConfigurationBinder"/> does, one
/// property at a time, so that a value which does not convert leaves its default and is remembered instead of
/// ending the binding at the first one: the options validators then report it among every other error.
/// </summary>
internal static class OptionsBinding
{
    /// <summary>
    /// A new <typeparamref name="T"/> bound from <paramref name="section"/>, and where its values came from.
    /// <paramref name="keyPrefix"/> names the keys in messages when the section is not where they were written.
    /// </summary>
    public static (T Options, OptionsSource Source) Bind<T>(IConfigurationSection section, string? keyPrefix = null)
        where T : class, new()
    {
        var options = new T();
        var failed = new Dictionary<string, Type>(StringComparer.OrdinalIgnoreCase);
        BindInto(options, section, "", failed);
        return (options, new OptionsSource(keyPrefix ?? section.Path + ":", section, failed));
    }

    /// <summary>The failures of a validation result, none when it passed.</summary>
    public static IEnumerable<string> FailuresOrNone(this ValidateOptionsResult result) => result.Failed ? result.Failures : [];

    private static void BindInto(object target, IConfigurationSection section, string prefix, Dictionary<string, Type> failed)
    {
        foreach (var property in target.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var child = section.GetSection(property.Name);
            if (!property.CanWrite || property.GetIndexParameters().Length > 0 || !child.Exists())
            {
                continue;
            }

            var key = prefix + property.Name;
            if (IsOptionsClass(property.PropertyType))
            {
                var nested = property.GetValue(target) ?? Activator.CreateInstance(property.PropertyType)!;
                BindInto(nested, child, key + ":", failed);
                property.SetValue(target, nested);
                continue;
            }

            if (child.Value is null && (property.PropertyType == typeof(string) || !typeof(IEnumerable).IsAssignableFrom(property.PropertyType)))
            {
                // A single value written as a list or an object (Balancer:Listen may be either): left at its
                // default, as the host's own binding leaves it; the validator reads the section itself.
                continue;
            }

            try
            {
                if (child.Get(property.PropertyType) is { } value)
                {
                    property.SetValue(target, value);
                }
            }
            catch (InvalidOperationException)
            {
                // The binder names only the first value it cannot convert; every one is wanted here.
                failed[key] = property.PropertyType;
            }
        }
    }

    /// <summary>A section of its own with settable properties, rather than a value or a collection.</summary>
    private static bool IsOptionsClass(Type type) =>
        type.IsClass && type != typeof(string) && !typeof(IEnumerable).IsAssignableFrom(type) && type.GetConstructor(Type.EmptyTypes) is not null;
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
