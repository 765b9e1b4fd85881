using MimeKit;
using MimeKit.Utils;

namespace Sombra.Anonymity;

/// <summary>
/// Which msg-ids of In-Reply-To and References may pass (RFC 5322 section 3.6.4). Threading needs
/// them, but an id whose right-hand side is an address literal or a name only the sender's own
/// machine has (mutt and Python write such ids when the host has no domain) would carry an IP
/// address or a computer's name out of a relay that promises neither.
/// </summary>
internal static class MessageIdRules
{
    /// <summary>
    /// Names that resolve only inside a home or office network: RFC 6762 appendix G's
    /// suggestions, RFC 8375's home.arpa, and the defaults of common systems.
    /// </summary>
    private static readonly string[] LocalSuffixes =
    [
        ".local", ".localdomain", ".lan", ".home", ".home.arpa", ".internal", ".localhost", ".intranet",
        ".private", ".corp",
    ];

    /// <summary>The ids that may pass, in order; <paramref name="dropped"/> counts the others.</summary>
    public static List<string> Kept(Header h, out int dropped)
    {
        var all = MimeUtils.EnumerateReferences(h.RawValue, 0, h.RawValue.Length).ToList();
        var kept = all.Where(id => IsPlain(id) && !NamesSenderMachine(id)).ToList();
        dropped = all.Count - kept.Count;
        return kept;
    }

    /// <summary>Printable ASCII without angle brackets, so that it can be written back as one id.</summary>
    public static bool IsPlain(string id) =>
        id.Length is > 0 and < 900 && id.All(c => c is > ' ' and < (char)127 and not '<' and not '>');

    public static bool NamesSenderMachine(string id)
    {
        var at = id.LastIndexOf('@');
        if (at < 0)
            return false;
        var host = id[(at + 1)..].TrimEnd('.').ToLowerInvariant();

        // An address literal, bracketed or not: a domain name has neither ':' nor only digits.
        if (host.StartsWith('[') || host.Contains(':') || host.All(c => char.IsAsciiDigit(c) || c == '.'))
            return true;
        return !host.Contains('.') || LocalSuffixes.Any(s => host.EndsWith(s, StringComparison.Ordinal));
    }
}
