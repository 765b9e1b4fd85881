namespace Sombra.Anonymity;

/// <summary>
/// Why a header that is not kept goes, for the report. The allow-list decides; this table only
/// explains: a header missing here is still removed, as "not on the allow-list".
/// </summary>
internal static class HeaderRules
{
    /// <summary>
    /// Headers no operator may add to KeepHeaders: they are rewritten, or they name the sender
    /// or an earlier hop.
    /// </summary>
    public static readonly IReadOnlySet<string> NeverKept = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
    {
        "From", "Sender", "Reply-To", "Return-Path", "Date", "Message-ID", "Received", "Bcc",
        "Resent-From", "Resent-Sender", "Resent-Date", "Resent-Message-ID", "Resent-To", "Resent-Cc",
        "Resent-Bcc", "X-Originating-IP", "DKIM-Signature", "Authentication-Results",
        "Disposition-Notification-To", "Return-Receipt-To",
    };

    private static readonly Dictionary<string, string> Reasons = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Received"] = "trace of earlier hops",
        ["Bcc"] = "never relayed",
        ["Date"] = "written again at release",
        ["Return-Path"] = "the envelope sender is the anonymous address",
        ["X-Originating-IP"] = "client address",
        ["User-Agent"] = "names the client software",
        ["X-Mailer"] = "names the client software",
        ["Organization"] = "names the sender's organization",
        ["DKIM-Signature"] = "signature of an earlier hop",
        ["ARC-Seal"] = "signature of an earlier hop",
        ["ARC-Message-Signature"] = "signature of an earlier hop",
        ["ARC-Authentication-Results"] = "result of an earlier hop",
        ["Authentication-Results"] = "result of an earlier hop",
        ["Received-SPF"] = "result of an earlier hop",
        ["Disposition-Notification-To"] = "a read receipt would reach the real sender",
        ["Return-Receipt-To"] = "a read receipt would reach the real sender",
        ["Content-Language"] = "the sender's language settings",
        ["Thread-Index"] = "client-specific",
        ["Thread-Topic"] = "client-specific",
        ["Resent-From"] = "names an earlier sender",
        ["Resent-Sender"] = "names an earlier sender",
        ["Resent-Date"] = "carries a local time",
        ["Resent-Message-ID"] = "names an earlier sender's host",
    };

    public static string WhyRemoved(string name)
    {
        if (Reasons.TryGetValue(name, out var why))
            return why;
        if (name.StartsWith("X-", StringComparison.OrdinalIgnoreCase))
            return "X- header";
        if (name.StartsWith("ARC-", StringComparison.OrdinalIgnoreCase))
            return "signature of an earlier hop";
        if (name.StartsWith("List-", StringComparison.OrdinalIgnoreCase))
            return "names a list the sender is on";
        return "not on the allow-list";
    }

    /// <summary>RFC 5322 section 3.6.8 field-name: printable US-ASCII except colon.</summary>
    public static bool IsFieldName(string name) =>
        name.Length > 0 && name.All(c => c is > ' ' and < (char)127 and not ':');

    /// <summary>Names of a canonical form: "message-id" and "Message-Id" are one header.</summary>
    public static string Canonical(string name) => name.ToLowerInvariant();
}
