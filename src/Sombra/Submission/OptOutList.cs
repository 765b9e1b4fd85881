using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Sombra.Hosting;

namespace Sombra.Submission;

/// <summary>
/// Recipients who asked to receive nothing through this relay. Only keyed hashes of their
/// addresses are kept (DataDirectory/optout.json), so the file is not a directory of who opted
/// out: it can answer "is this address on it?" but never "who is on it?". The file is re-read
/// when it changes, so <c>sombra optout add</c> takes effect on a running relay.
/// </summary>
public sealed class OptOutList
{
    private readonly WatchedJsonFile<HashSet<string>> _file;
    private readonly byte[] _key;

    public OptOutList(string dataDirectory)
    {
        _file = new(Path.Combine(dataDirectory, "optout.json"), () => []);
        _key = SecretFile.LoadOrCreate(Path.Combine(dataDirectory, "optout.key"));
    }

    public string Hash(string address) =>
        Convert.ToBase64String(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(Canonical(address))));

    public bool Contains(string address) => _file.Read().Contains(Hash(address));

    public IReadOnlyCollection<string> Hashes() => _file.Read().Order().ToArray();

    public bool Add(string address)
    {
        var hash = Hash(address);
        return _file.Update(set => set.Contains(hash) ? null : [.. set, hash]);
    }

    public bool Remove(string address)
    {
        var hash = Hash(address);
        return _file.Update(set => set.Contains(hash) ? set.Where(h => h != hash).ToHashSet() : null);
    }

    /// <summary>
    /// One spelling for the forms of an address that reach the same mailbox, so that a sender
    /// cannot pass an opt-out by writing it another way: a quoted local part that needs no
    /// quotes loses them, the domain takes its IDNA A-label form, and all of it is lower case
    /// (mail systems treat addresses so in practice).
    /// </summary>
    /// <remarks>
    /// Decomposed (NFD) spellings are not unified: the relay runs without ICU
    /// (InvariantGlobalization), where .NET has no Unicode normalizer, and a hand-kept table was
    /// not worth it: a decomposed domain is not valid IDNA and reaches no mailbox, and ordinary
    /// servers compare local parts as written.
    /// </remarks>
    public static string Canonical(string address)
    {
        address = address.Trim();
        var at = address.LastIndexOf('@');
        if (at <= 0)
            return address.ToLowerInvariant();
        return LocalPart(address[..at]) + "@" + Domain(address[(at + 1)..]);
    }

    private static string LocalPart(string local)
    {
        if (local.Length >= 2 && local[0] == '"' && local[^1] == '"')
        {
            var text = Unquote(local[1..^1]);
            local = IsDotAtom(text) ? text : "\"" + text.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\"";
        }
        return local.ToLowerInvariant();
    }

    private static string Unquote(string quoted)
    {
        var text = new StringBuilder(quoted.Length);
        for (var i = 0; i < quoted.Length; i++)
            text.Append(quoted[i] == '\\' && i + 1 < quoted.Length ? quoted[++i] : quoted[i]);
        return text.ToString();
    }

    // RFC 5322 dot-atom, with RFC 6531's UTF-8 atext.
    private static bool IsDotAtom(string text) =>
        text.Length > 0 && text.Split('.').All(atom => atom.Length > 0 && atom.All(c =>
            char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-/=?^_`{|}~".Contains(c)
            || c > 0x7f && !char.IsControl(c) && !char.IsWhiteSpace(c)));

    /// <summary>
    /// A-labels are decoded first, so that every spelling meets in one U-label form. Under
    /// InvariantGlobalization IdnMapping is plain Punycode, without IDNA's own case mapping, so
    /// that is done here.
    /// </summary>
    private static string Domain(string domain)
    {
        if (domain.StartsWith('['))
            return domain.ToLowerInvariant();
        // IdnMapping instances are not thread-safe; one per call costs next to nothing.
        var idn = new IdnMapping();
        var labels = domain.Split('.').Select(label => ULabel(idn, label).ToLowerInvariant());
        try
        {
            return idn.GetAscii(string.Join('.', labels)).ToLowerInvariant();
        }
        catch (ArgumentException)
        {
            return domain.ToLowerInvariant();
        }
    }

    private static string ULabel(IdnMapping idn, string label)
    {
        if (!label.StartsWith("xn--", StringComparison.OrdinalIgnoreCase))
            return label;
        try
        {
            return idn.GetUnicode(label.ToLowerInvariant());
        }
        catch (ArgumentException)
        {
            return label; // not valid Punycode: compared as it is written
        }
    }
}
