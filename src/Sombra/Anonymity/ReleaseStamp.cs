using System.Globalization;

namespace Sombra.Anonymity;

/// <summary>
/// The headers written when a message leaves, not when it arrived: with mixing, a Date or a
/// Received stamp from submission time would undo the delay that hides who sent it.
/// </summary>
public static class ReleaseStamp
{
    /// <summary>
    /// The header lines (each ending in CRLF) to put in front of a stored message at release:
    /// the trace headers completed with their date, then Date. The time is UTC, zone +0000,
    /// rounded down to <paramref name="precision"/>.
    /// </summary>
    public static string Headers(IReadOnlyList<string> traceHeaders, DateTimeOffset releasedAt, TimeSpan precision)
    {
        var date = FormatDate(Round(releasedAt, precision));
        var text = new System.Text.StringBuilder();
        foreach (var trace in traceHeaders)
        {
            // Folded where mainstream MTAs fold it (before "by"), so that the line stays under
            // 78 characters and its shape marks nothing as unusual.
            var at = trace.StartsWith("from ", StringComparison.Ordinal) ? trace.IndexOf(" by ", StringComparison.Ordinal) : -1;
            var folded = at < 0 ? trace : trace[..at] + "\r\n\t" + trace[(at + 1)..];
            text.Append("Received: ").Append(folded).Append(";\r\n\t").Append(date).Append("\r\n");
        }
        text.Append("Date: ").Append(date).Append("\r\n");
        return text.ToString();
    }

    public static DateTimeOffset Round(DateTimeOffset time, TimeSpan precision)
    {
        var utc = time.ToUniversalTime();
        if (precision <= TimeSpan.Zero)
            return new DateTimeOffset(utc.Ticks - utc.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
        return new DateTimeOffset(utc.Ticks - utc.Ticks % precision.Ticks, TimeSpan.Zero);
    }

    /// <summary>RFC 5322 section 3.3 date-time, e.g. <c>Fri, 04 Dec 2026 04:16:00 +0000</c>.</summary>
    public static string FormatDate(DateTimeOffset utc) =>
        utc.ToUniversalTime().ToString("ddd, dd MMM yyyy HH:mm:ss '+0000'", CultureInfo.InvariantCulture);
}
