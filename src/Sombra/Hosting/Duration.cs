using System.ComponentModel;
using System.Globalization;

namespace Sombra.Hosting;

/// <summary>
/// Durations in configuration read as operators write them: <c>90s</c>, <c>5m</c>, <c>4h</c>,
/// <c>5d</c>, <c>250ms</c>, or .NET's own <c>00:05:00</c>.
/// </summary>
public static class Duration
{
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
            return false;
        text = text.Trim();

        (string unit, double seconds)[] units =
            [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)];
        foreach (var (unit, seconds) in units)
        {
            if (!text.EndsWith(unit, StringComparison.OrdinalIgnoreCase))
                continue;
            var number = text[..^unit.Length];
            // "5ms" must not be read as "5m" followed by junk, nor "5m" as "5" with unit "m"
            // matched by the "ms" entry; the loop order and the digit check settle both.
            if (number.Length == 0 || !char.IsDigit(number[^1]))
                continue;
            if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var n)
                && n >= 0)
            {
                value = TimeSpan.FromSeconds(n * seconds);
                return true;
            }
            return false;
        }

        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value) && value >= TimeSpan.Zero;
    }

    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero) return "0s";
        if (value.TotalDays >= 1 && value.Ticks % TimeSpan.TicksPerDay == 0) return $"{value.TotalDays}d";
        if (value.Ticks % TimeSpan.TicksPerHour == 0) return $"{value.TotalHours}h";
        if (value.Ticks % TimeSpan.TicksPerMinute == 0) return $"{value.TotalMinutes}m";
        if (value.Ticks % TimeSpan.TicksPerSecond == 0) return $"{value.TotalSeconds}s";
        return $"{value.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms";
    }

    /// <summary>Makes the configuration binder accept these forms for every TimeSpan key.</summary>
    public static void RegisterConverter() =>
        TypeDescriptor.AddAttributes(typeof(TimeSpan), new TypeConverterAttribute(typeof(Converter)));

    private sealed class Converter : TimeSpanConverter
    {
        public override object? ConvertFrom(ITypeDescriptorContext? context, CultureInfo? culture, object value)
        {
            if (value is string s)
            {
                if (TryParse(s, out var span))
                    return span;
                throw new FormatException($"'{s}' is not a duration (e.g. 30s, 5m, 4h, 5d).");
            }
            return base.ConvertFrom(context, culture, value);
        }
    }
}
