using System.Text;
using MimeKit;
using MimeKit.Utils;

namespace Sombra.Anonymity;

/// <summary>
/// Rewrites one header block through the allow-list of issue #3. Every kept value is parsed,
/// decoded and written again by MimeKit in a fixed order, so neither the client's folding,
/// encoded-word style, header order nor comments survive, and a CR or LF hidden in an RFC 2047
/// word can only come out as a space.
/// </summary>
internal sealed class HeaderWriter
{
    public enum Block { Message, EmbeddedMessage, Part }

    private static readonly HashSet<string> Encodings =
        ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "uuencode", "x-uue"];

    /// <summary>Content-Type parameters a reader needs; the rest (x-unix-mode, x-mac-*) go.</summary>
    private static readonly HashSet<string> ContentTypeParameters = new(StringComparer.OrdinalIgnoreCase)
    {
        "charset", "format", "delsp", "name", "type", "start", "start-info", "protocol", "micalg",
        "method", "report-type", "smime-type", "component", "reply-type",
    };

    private readonly ScrubPolicy _policy;
    private readonly List<ScrubNote>? _report;
    private readonly FormatOptions _ascii;
    private readonly FormatOptions _international;
    private readonly ParserOptions _parser = ParserOptions.Default.Clone();

    public bool WroteNonAscii { get; private set; }

    public HeaderWriter(ScrubPolicy policy, List<ScrubNote>? report)
    {
        _policy = policy;
        _report = report;
        _ascii = FormatOptions.Default.Clone();
        _ascii.NewLineFormat = NewLineFormat.Dos;
        _ascii.International = false;
        _international = _ascii.Clone();
        _international.International = true;
    }

    /// <summary>The rewritten block, each line ending in CRLF, without the blank line after it.</summary>
    /// <param name="keepContentId">
    /// Inside multipart/related, where HTML refers to parts by Content-ID (RFC 2387); elsewhere
    /// nothing can, and clients build it from the sender's domain or clock.
    /// </param>
    public byte[] Write(IReadOnlyList<Header> headers, Block kind, string where, ContentType contentType,
        string? boundary, bool container, bool keepContentId)
    {
        var message = kind != Block.Part;
        var to = new List<InternetAddress>();
        var cc = new List<InternetAddress>();
        string? subject = null, inReplyTo = null, references = null, contentId = null, description = null;
        string? encoding = null;
        Header? disposition = null;
        var hadContentType = false;
        string? slashedName = null;
        var extra = new List<Header>();

        foreach (var h in headers)
        {
            switch (HeaderRules.Canonical(h.Field))
            {
                case "to" when message:
                    to.AddRange(Addresses(h, where, merged: to.Count > 0));
                    break;
                case "cc" when message:
                    cc.AddRange(Addresses(h, where, merged: cc.Count > 0));
                    break;
                case "subject" when message:
                    if (subject is null)
                        subject = UnstructuredValue(h, where);
                    else
                        Removed(where, h, "a second Subject");
                    break;
                case "in-reply-to" when message:
                    if (inReplyTo is null)
                        inReplyTo = MessageIds(h, where);
                    else
                        Removed(where, h, "a second In-Reply-To");
                    break;
                case "references" when message:
                    if (references is null)
                        references = MessageIds(h, where);
                    else
                        Removed(where, h, "a second References");
                    break;
                case "from" when message:
                case "sender" when message:
                case "reply-to" when message:
                    Note(where, h, "rewritten", "replaced by the anonymous sender");
                    break;
                case "message-id" when message:
                    Note(where, h, "rewritten", "replaced by a random id");
                    break;
                case "mime-version":
                    if (!message)
                        Removed(where, h, "only the message header has it");
                    else if (h.Value.Trim() != "1.0")
                        Note(where, h, "rewritten", "comments name the client");
                    break;
                case "content-type":
                    if (hadContentType)
                        throw new ScrubRefusedException("a part has two Content-Type headers.");
                    hadContentType = true;
                    NoteComments(h, where);
                    if (Array.IndexOf(h.RawValue, (byte)'\\') >= 0
                        && ContentType.TryParse(_parser, Slashed(h.RawValue), out var slashed))
                        slashedName = slashed.Name;
                    break;
                case "content-transfer-encoding":
                    if (encoding is not null)
                        throw new ScrubRefusedException("a part has two Content-Transfer-Encoding headers.");
                    encoding = TransferEncoding(h, where);
                    break;
                case "content-disposition":
                    if (disposition is not null)
                        throw new ScrubRefusedException("a part has two Content-Disposition headers.");
                    disposition = h;
                    break;
                case "content-id" when !keepContentId:
                    Removed(where, h, "outside multipart/related nothing refers to it");
                    break;
                case "content-id":
                    if (contentId is null)
                        contentId = FirstId(h, where);
                    else
                        Removed(where, h, "a second Content-ID");
                    break;
                case "content-description":
                    if (description is null)
                        description = Description(h, where);
                    else
                        Removed(where, h, "a second Content-Description");
                    break;
                default:
                    if (_policy.KeepHeaders.Contains(h.Field) && !HeaderRules.NeverKept.Contains(h.Field))
                        extra.Add(h);
                    else
                        Removed(where, h, HeaderRules.WhyRemoved(h.Field));
                    break;
            }
        }

        if (container && encoding is not null and not ("7bit" or "8bit" or "binary"))
            throw new ScrubRefusedException(
                $"a {contentType.MimeType} part has Content-Transfer-Encoding {encoding} (RFC 2046 section 5).");

        var text = new StringBuilder();
        if (message)
        {
            var from = new MailboxAddress(_policy.SenderName ?? "", _policy.SenderAddress);
            Append(text, "From", [from]);
            if (to.Count > 0)
                Append(text, "To", to);
            if (cc.Count > 0)
                Append(text, "Cc", cc);
            if (subject is not null)
                text.Append(Unstructured("Subject", subject));
            text.Append("Message-ID: ").Append(RandomToken.MessageId(_policy.HostName)).Append("\r\n");
            if (!string.IsNullOrEmpty(inReplyTo))
                text.Append(Formatted(HeaderId.InReplyTo, inReplyTo));
            if (!string.IsNullOrEmpty(references))
                text.Append(Formatted(HeaderId.References, references));
            text.Append("MIME-Version: 1.0\r\n");
            if (kind == Block.Message && _policy.Disclosure is not null)
                text.Append(Unstructured("Comments", _policy.Disclosure));
        }

        foreach (var h in extra)
            text.Append(h.Field).Append(':').Append(Encoding.UTF8.GetString(h.RawValue));

        if (hadContentType || boundary is not null)
            text.Append(ContentTypeLine(contentType, boundary, where, slashedName)).Append("\r\n");
        if (encoding is not null)
            text.Append("Content-Transfer-Encoding: ").Append(encoding).Append("\r\n");
        if (disposition is not null)
            text.Append(DispositionLine(disposition, where));
        if (contentId is not null)
            text.Append("Content-ID: <").Append(contentId).Append(">\r\n");
        if (!string.IsNullOrWhiteSpace(description))
            text.Append(Unstructured("Content-Description", description));

        var result = text.ToString();
        CheckLines(result);
        if (result.Any(c => c > '\x7f'))
            WroteNonAscii = true;
        return Encoding.UTF8.GetBytes(result);
    }

    private IEnumerable<InternetAddress> Addresses(Header h, string where, bool merged)
    {
        var raw = Comments.Strip(h.RawValue, out var hadComments);
        if (raw is null || !InternetAddressList.TryParse(_parser, raw, out var list))
            throw new ScrubRefusedException($"the {h.Field} header cannot be parsed as addresses.");
        var why = new List<string>();
        if (hadComments)
            why.Add("comments removed");
        foreach (var address in list)
            Clean(address, why);
        if (merged)
            why.Add($"merged into the first {h.Field}");
        if (why.Count > 0)
            Note(where, h, "rewritten", string.Join("; ", why.Distinct()));
        return list;
    }

    private static void Clean(InternetAddress address, List<string> why)
    {
        var name = Sanitize(address.Name ?? "").Trim();
        if (name != (address.Name ?? "").Trim())
            why.Add("control characters in a name replaced");
        address.Name = name;

        // An obsolete source route (RFC 5322 section 4.4) names the hosts the sender chose.
        if (address is MailboxAddress { Route.Count: > 0 } mailbox)
        {
            mailbox.Route.Clear();
            why.Add("source route removed");
        }
        if (address is GroupAddress group)
            foreach (var member in group.Members)
                Clean(member, why);
    }

    /// <summary>Control characters, CR and LF above all, become spaces.</summary>
    private static string Sanitize(string text) =>
        string.Create(text.Length, text, static (span, t) =>
        {
            for (var i = 0; i < t.Length; i++)
                span[i] = char.IsControl(t[i]) ? ' ' : t[i];
        });

    private string MessageIds(Header h, string where)
    {
        var ids = MessageIdRules.Kept(h, out var dropped);
        var text = string.Join(" ", ids.Select(id => "<" + id + ">"));
        if (dropped > 0)
            Note(where, h, ids.Count == 0 ? "removed" : "reduced",
                $"{dropped} id(s) naming the sender's machine by address or local name, or malformed");
        else if (Changed(h.Value, text))
            Note(where, h, "rewritten", "comments and text between the ids removed");
        return text;
    }

    private string? FirstId(Header h, string where)
    {
        var id = MimeUtils.EnumerateReferences(h.RawValue, 0, h.RawValue.Length).FirstOrDefault();
        if (id is not null && MessageIdRules.IsPlain(id))
        {
            if (Changed(h.Value, "<" + id + ">"))
                Note(where, h, "rewritten", "comments and text after the id removed");
            return id;
        }
        Removed(where, h, "not a valid id");
        return null;
    }

    /// <summary>Whether a kept value changed beyond folding and white space, for the report.</summary>
    private static bool Changed(string original, string written) =>
        !string.Join(' ', original.Split((char[])[' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries))
            .Equals(written.Trim(), StringComparison.Ordinal);

    private string TransferEncoding(Header h, string where)
    {
        var value = h.Value;
        var comment = value.IndexOf('(');
        var token = (comment >= 0 ? value[..comment] : value).Trim().ToLowerInvariant();
        if (!Encodings.Contains(token))
            throw new ScrubRefusedException("a part has an unknown Content-Transfer-Encoding.");
        if (comment >= 0)
            Note(where, h, "rewritten", "comments removed");
        return token;
    }

    /// <summary>The decoded value of an unstructured field, noting control characters that go.</summary>
    private string UnstructuredValue(Header h, string where)
    {
        var value = Sanitize(h.Value).Trim();
        if (value != h.Value.Trim())
            Note(where, h, "rewritten", "control characters replaced by spaces");
        return value;
    }

    /// <summary>
    /// Some clients describe an attachment by the path they took it from; a value that begins
    /// like an absolute path is cut to its base name, as file names are.
    /// </summary>
    private string Description(Header h, string where)
    {
        var value = UnstructuredValue(h, where);
        if (!LooksLikePath(value))
            return value;
        Note(where, h, "reduced", "a path reduced to its base name");
        return BaseName(value);
    }

    private static bool LooksLikePath(string value) =>
        value.StartsWith('/') || value.StartsWith('\\') || value.StartsWith("~/", StringComparison.Ordinal)
        || value.StartsWith("file:", StringComparison.OrdinalIgnoreCase)
        || (value.Length >= 3 && char.IsAsciiLetter(value[0]) && value[1] == ':' && value[2] is '\\' or '/');

    private void NoteComments(Header h, string where)
    {
        Comments.Strip(h.RawValue, out var found);
        if (found)
            Note(where, h, "rewritten", "comments removed");
    }

    private void Append(StringBuilder text, string name, IReadOnlyList<InternetAddress> addresses)
    {
        // A local part in UTF-8 cannot be encoded (RFC 6532); only then is the header UTF-8.
        var international = addresses.Any(NeedsUtf8);
        var options = international ? _international : _ascii;
        var line = name.Length + 1;
        text.Append(name).Append(':');
        for (var i = 0; i < addresses.Count; i++)
        {
            var one = addresses[i].ToString(options, true) + (i + 1 < addresses.Count ? "," : "");
            if (line + 1 + one.Length > 76 && i > 0)
            {
                text.Append("\r\n");
                line = 0;
            }
            text.Append(' ').Append(one);
            line += 1 + one.Length;
        }
        text.Append("\r\n");
    }

    private static bool NeedsUtf8(InternetAddress address) => address switch
    {
        MailboxAddress m => m.LocalPart.Any(c => c > '\x7f'),
        GroupAddress g => g.Members.Any(NeedsUtf8),
        _ => false,
    };

    private string Unstructured(string name, string value)
    {
        var header = new Header(name, "");
        header.SetValue(_ascii, Encoding.UTF8, Sanitize(value).Trim());
        return name + ":" + Encoding.UTF8.GetString(header.RawValue);
    }

    private string Formatted(HeaderId id, string value)
    {
        var header = new Header(id, "");
        header.SetValue(_ascii, Encoding.UTF8, value);
        return header.Field + ":" + Encoding.ASCII.GetString(header.RawValue);
    }

    private string ContentTypeLine(ContentType original, string? boundary, string where, string? slashedName)
    {
        var type = new ContentType(original.MediaType.ToLowerInvariant(), original.MediaSubtype.ToLowerInvariant());
        foreach (var p in original.Parameters)
        {
            if (p.Name.Equals("boundary", StringComparison.OrdinalIgnoreCase))
                continue;
            if (!ContentTypeParameters.Contains(p.Name))
            {
                Note(where, "Content-Type", "reduced", $"parameter {p.Name} removed", p.Value);
                continue;
            }
            var value = p.Name.Equals("name", StringComparison.OrdinalIgnoreCase)
                ? BaseName(slashedName ?? p.Value)
                : p.Value;
            if (value != p.Value)
                Note(where, "Content-Type", "reduced", "name reduced to its base name", p.Value);
            if (Sanitize(value) != value)
                Note(where, "Content-Type", "rewritten", $"control characters in {p.Name} replaced", p.Value);
            if (value.Length > 0)
                type.Parameters.Add(p.Name.ToLowerInvariant(), Sanitize(value));
        }
        if (boundary is not null)
        {
            type.Boundary = boundary;
            Note(where, "Content-Type", "rewritten", "boundary regenerated", original.Boundary);
        }
        return type.ToString(_ascii, Encoding.UTF8, true);
    }

    /// <summary>
    /// RFC 2183: the disposition and a base file name stay; creation-, modification- and
    /// read-date and size carry the sender's clock and file system, so they go.
    /// </summary>
    private string DispositionLine(Header h, string where)
    {
        if (!ContentDisposition.TryParse(_parser, Slashed(h.RawValue), out var original))
        {
            Removed(where, h, "cannot be parsed");
            return "";
        }
        NoteComments(h, where);
        var kind = original.Disposition.ToLowerInvariant() is "inline" ? "inline" : "attachment";
        var reduced = new ContentDisposition(kind);
        var name = original.FileName is null ? "" : BaseName(Sanitize(original.FileName));
        if (name.Length > 0)
            reduced.FileName = name;
        if (original.Parameters.Count > (name.Length > 0 ? 1 : 0) || name != (original.FileName ?? "")
            || kind != original.Disposition)
            Note(where, h, "reduced", "base file name only; dates, size and other parameters removed");
        return reduced.ToString(_ascii, Encoding.UTF8, true) + "\r\n";
    }

    /// <summary>
    /// Clients that send a Windows path write its backslashes unescaped, and a quoted-string
    /// parser would read them as quoted-pairs (RFC 5322 section 3.2.4) and join the folder names
    /// to the file name; as separators they are cut off with the rest of the path.
    /// </summary>
    private static byte[] Slashed(byte[] raw)
    {
        if (Array.IndexOf(raw, (byte)'\\') < 0)
            return raw;
        var copy = (byte[])raw.Clone();
        for (var i = 0; i < copy.Length; i++)
            if (copy[i] == '\\')
                copy[i] = (byte)'/';
        return copy;
    }

    /// <summary>The part after the last / or \: a path names the sender's account and folders.</summary>
    internal static string BaseName(string fileName)
    {
        var cut = fileName.LastIndexOfAny(['/', '\\']);
        return fileName[(cut + 1)..].Trim();
    }

    /// <summary>Defends the output against a formatting mistake: only CRLF, only folded lines.</summary>
    private static void CheckLines(string block)
    {
        var lines = block.Split("\r\n");
        for (var i = 0; i < lines.Length - 1; i++)
        {
            var line = lines[i];
            var continuation = line.Length > 0 && line[0] is ' ' or '\t';
            if (line.Contains('\r') || line.Contains('\n') || line.Trim().Length == 0
                || (!continuation && !line.Contains(':')))
                throw new ScrubRefusedException("the rewritten headers would be malformed.");
        }
        if (lines[^1].Length != 0)
            throw new ScrubRefusedException("the rewritten headers would be malformed.");
    }

    private void Removed(string where, Header h, string why) => Note(where, h, "removed", why);

    private void Note(string where, Header h, string action, string why) =>
        _report?.Add(new ScrubNote(where, h.Field, action, why, h.Value));

    private void Note(string where, string name, string action, string why, string? value) =>
        _report?.Add(new ScrubNote(where, name, action, why, value));
}
