using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Sombra.Submission;

/// <summary>
/// The RFC 5321 section 4.1.2 path grammar, read strictly. Sombra relays only plain
/// <c>local@domain</c> mailboxes: source routes, <c>%</c> and <c>!</c> routing and quoted
/// <c>@</c> would let a client steer mail through hops the operator never chose.
/// </summary>
public static class SmtpPath
{
    /// <summary>RFC 5321 section 4.5.3.1.3: a path is at most 256 octets.</summary>
    public const int MaxPathLength = 256;

    /// <summary>An address and the reply to send when it is refused.</summary>
    public readonly record struct Result(string? Address, string? Error)
    {
        public bool Ok => Error is null;
    }

    /// <summary>Parses <c>&lt;path&gt;</c> (or <c>&lt;&gt;</c> when <paramref name="allowNull"/>).</summary>
    public static Result ParsePath(string text, bool smtpUtf8, bool allowNull)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(text) > MaxPathLength)
            return new(null, "501 5.1.3 Path too long");
        if (text.Length < 2 || text[0] != '<' || text[^1] != '>')
            return new(null, "501 5.1.7 Address must be enclosed in <>");
        var inner = text[1..^1];
        if (inner.Length == 0)
            return allowNull ? new("", null) : new(null, "501 5.1.3 Empty recipient address");
        if (inner[0] == '@')
            return new(null, "553 5.1.0 Source routes are not accepted");
        return TryParseMailbox(inner, smtpUtf8, out var address, out var error)
            ? new(address, null)
            : new(null, error);
    }

    /// <summary>Parses a bare <c>local@domain</c> mailbox.</summary>
    public static bool TryParseMailbox(string text, bool smtpUtf8, out string address, out string error)
    {
        address = "";
        error = "";
        if (!smtpUtf8 && text.Any(c => c > 0x7f))
        {
            error = "553 5.6.7 Non-ASCII address needs SMTPUTF8";
            return false;
        }

        string local;
        int at;
        if (text.StartsWith('"'))
        {
            var end = QuotedEnd(text);
            if (end < 0)
            {
                error = "501 5.1.3 Malformed quoted local part";
                return false;
            }
            local = text[..(end + 1)];
            if (local.Contains('@'))
            {
                error = "553 5.1.3 Quoted @ in the local part is not accepted";
                return false;
            }
            at = end + 1;
            if (at >= text.Length || text[at] != '@')
            {
                error = "501 5.1.3 Address lacks @domain";
                return false;
            }
        }
        else
        {
            at = text.LastIndexOf('@');
            if (at <= 0)
            {
                error = "501 5.1.3 Address lacks local part or @domain";
                return false;
            }
            local = text[..at];
            if (!IsDotString(local))
            {
                error = local.Contains('@')
                    ? "553 5.1.3 Only one @ is allowed"
                    : "501 5.1.3 Malformed local part";
                return false;
            }
        }

        if (local.Contains('%') || local.Contains('!'))
        {
            error = "553 5.1.3 % and ! routing are not accepted";
            return false;
        }
        if (System.Text.Encoding.UTF8.GetByteCount(local) > 64)
        {
            error = "501 5.1.3 Local part too long";
            return false;
        }

        var domain = text[(at + 1)..];
        if (!IsDomainOrLiteral(domain))
        {
            error = "501 5.1.2 Malformed domain";
            return false;
        }
        address = local + "@" + domain;
        return true;
    }

    /// <summary>The domain of an address, lower-cased, for grouping deliveries.</summary>
    public static string DomainOf(string address) =>
        address[(address.LastIndexOf('@') + 1)..].ToLowerInvariant();

    private static int QuotedEnd(string text)
    {
        for (var i = 1; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\')
            {
                if (i + 1 >= text.Length || text[i + 1] < 0x20 || text[i + 1] == 0x7f)
                    return -1;
                i++;
            }
            else if (c == '"')
                return i;
            else if (c < 0x20 || c == 0x7f)
                return -1;
        }
        return -1;
    }

    private static bool IsDotString(string s) =>
        s.Length > 0 && s.Split('.').All(atom => atom.Length > 0 && atom.All(IsAtext));

    // RFC 5322 atext, plus UTF-8 (RFC 6531) when the session allows it; the caller has
    // already refused non-ASCII without SMTPUTF8.
    private static bool IsAtext(char c) =>
        char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-/=?^_`{|}~".Contains(c) || c > 0x7f && !char.IsControl(c)
        && !char.IsWhiteSpace(c);

    private static bool IsDomainOrLiteral(string domain)
    {
        if (domain.StartsWith('[') && domain.EndsWith(']'))
        {
            var literal = domain[1..^1];
            if (literal.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase))
                return IPAddress.TryParse(literal[5..], out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6;
            var parts = literal.Split('.');
            return parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit)
                && int.Parse(p, CultureInfo.InvariantCulture) <= 255);
        }
        if (domain.Length is 0 or > 255)
            return false;
        return domain.Split('.').All(label => label.Length is > 0 and <= 63
            && label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-' || c > 0x7f && char.IsLetterOrDigit(c))
            && label[0] != '-' && label[^1] != '-');
    }
}
