using System.Globalization;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Options;

namespace Balancer.Configuration;

/// <summary>
/// The validator of one options class: the <see cref="IValidateOptions{TOptions}"/> of it, reporting all its
/// errors at once, each under its config key.
/// </summary>
internal abstract class OptionsValidator<T>(OptionsSource source) : IValidateOptions<T>
    where T : class
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var errors = source.Errors();
        Check(options, errors);
        return errors.Result();
    }

    protected abstract void Check(T options, OptionErrors errors);
}

/// <summary>
/// The errors of one options object, each naming its config key and quoting the text as written. A check is
/// given the property itself (<c>errors.WholeNumber(options.MaxAttempts, 0, 10)</c>): its key comes from the
/// property's name, so no key is written twice.
/// </summary>
internal sealed class OptionErrors(OptionsSource source)
{
    private readonly List<string> _messages = [];

    public OptionsSource Source => source;

    /// <summary>An error of property <paramref name="name"/> (a path below the options, such as <c>Hsts:MaxAge</c>).</summary>
    public void Add(string name, string reason) => _messages.Add($"{source.Key(name)}: {reason}");

    /// <summary>An error of a full config key, for a key that is a list of values (<c>Balancer:Listen:1</c>).</summary>
    public void AddAt(string key, string reason) => _messages.Add($"{key}: {reason}");

    /// <summary>Nested options, checked by their own validator under their own keys.</summary>
    public void Nested<T>(T options, Func<OptionsSource, IValidateOptions<T>> validator, [CallerArgumentExpression(nameof(options))] string property = "")
        where T : class =>
        _messages.AddRange(validator(source.Nested(NameOf(property))).Validate(null, options).FailuresOrNone());

    /// <summary>
    /// The errors found, and a value that did not convert which no check named: so a key added to an options
    /// class is checked for its type before any check of it is written.
    /// </summary>
    public ValidateOptionsResult Result()
    {
        foreach (var (key, text, type) in source.Failures)
        {
            if (!_messages.Exists(m => m.StartsWith(key + ": ", StringComparison.OrdinalIgnoreCase)))
            {
                AddAt(key, ConfigChecks.NotA(type, text));
            }
        }

        return _messages.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(_messages);
    }

    public void WholeNumber(long? value, long min, long max, [CallerArgumentExpression(nameof(value))] string property = "")
    {
        var name = NameOf(property);
        if (source.Failed(name) || value < min || value > max)
        {
            Add(name, ConfigChecks.NotWholeNumber(Text(name, value), min, max));
        }
    }

    /// <summary>A number that <paramref name="valid"/> accepts; <paramref name="must"/> says which.</summary>
    public void Number(double value, Func<double, bool> valid, string must, [CallerArgumentExpression(nameof(value))] string property = "")
    {
        var name = NameOf(property);
        if (source.Failed(name) || (source.Raw(name) is not null && !valid(value)))
        {
            Add(name, $"'{Text(name, value)}' {must}");
        }
    }

    /// <summary>A number up to 1, from 0 or above it; NaN is no fraction either.</summary>
    public void Fraction(double value, bool zeroAllowed, [CallerArgumentExpression(nameof(value))] string property = "") =>
        Number(value, v => v <= 1 && (zeroAllowed ? v >= 0 : v > 0), ConfigChecks.FractionMust(zeroAllowed), property);

    public void PositiveTimeSpan(TimeSpan? value, bool zeroAllowed = false, [CallerArgumentExpression(nameof(value))] string property = "")
    {
        var name = NameOf(property);
        if (ConfigChecks.TimeSpanError(source.Raw(name), !source.Failed(name), value, zeroAllowed) is { } reason)
        {
            Add(name, reason);
        }
    }

    /// <summary>One of <paramref name="allowed"/>, compared ignoring case, if set at all.</summary>
    public void OneOf(string? value, string[] allowed, string what = "policy", [CallerArgumentExpression(nameof(value))] string property = "")
    {
        if (value is not null && !allowed.Contains(value, StringComparer.OrdinalIgnoreCase))
        {
            Add(NameOf(property), ConfigChecks.NotOneOf(what, value, allowed));
        }
    }

    /// <summary>The property's key below the options: <c>options.Hsts.MaxAge</c> is <c>Hsts:MaxAge</c>.</summary>
    public static string NameOf(string property)
    {
        var dot = property.IndexOf('.', StringComparison.Ordinal);
        return (dot < 0 ? property : property[(dot + 1)..]).Replace("?", "", StringComparison.Ordinal).Replace("!", "", StringComparison.Ordinal).Replace('.', ':');
    }

    private string Text(string name, object? value) =>
        source.Raw(name) ?? Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
}

/// <summary>The wording of the checks shared by the options validators and the checks of YARP's own keys.</summary>
internal static class ConfigChecks
{
    public static string NotOneOf(string what, string value, IEnumerable<string> allowed) => $"unknown {what} '{value}'; use one of {string.Join(", ", allowed)}";

    public static string NotBool(string? text) => $"'{text}' is not true or false";

    /// <summary>Why <paramref name="text"/> does not convert to <paramref name="type"/>.</summary>
    public static string NotA(Type type, string? text)
    {
        type = Nullable.GetUnderlyingType(type) ?? type;
        return type == typeof(bool) ? NotBool(text)
            : type == typeof(TimeSpan) ? $"'{text}' is not a time span such as 00:00:02"
            : type == typeof(int) || type == typeof(long) ? $"'{text}' is not a whole number"
            : type == typeof(double) ? $"'{text}' is not a number"
            : type.IsEnum ? $"'{text}' is not one of {string.Join(", ", Enum.GetNames(type))}"
            : $"'{text}' cannot be read as {type.Name}";
    }

    public static string NotWholeNumber(string text, long min, long max) => $"'{text}' must be a whole number from {min} to {max}";

    public static string FractionMust(bool zeroAllowed) => $"must be a number {(zeroAllowed ? "from 0 to 1" : "above 0 and at most 1")}";

    /// <summary>Why a time span set to <paramref name="text"/> is not valid, or null when it is (or is not set).</summary>
    public static string? TimeSpanError(string? text, bool converted, TimeSpan? value, bool zeroAllowed)
    {
        if (text is null)
        {
            return null;
        }

        if (!converted || value is null)
        {
            return NotA(typeof(TimeSpan), text);
        }

        return value < TimeSpan.Zero || (value == TimeSpan.Zero && !zeroAllowed)
            ? $"must be {(zeroAllowed ? "zero or positive" : "positive")}, not '{text}'"
            : null;
    }

    /// <summary>A file the balancer will create or replace: a valid path, not a directory, in a directory that exists.</summary>
    public static void FileToWrite(OptionErrors errors, string name, string path, string instead)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path.Trim());
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            errors.Add(name, $"'{path}' is not a file path ({e.Message})");
            return;
        }

        if (Directory.Exists(full))
        {
            errors.Add(name, $"'{path}' is a directory; {instead}");
        }
        else if (!Directory.Exists(Path.GetDirectoryName(full)))
        {
            errors.Add(name, $"the directory of '{path}' does not exist");
        }
    }
}
