namespace Sombra.Anonymity;

/// <summary>
/// Removes RFC 5322 comments (section 3.2.2) from a structured header value. MimeKit keeps no
/// trace of them in most values, but makes a comment after a bare address its display name, so
/// <c>bob@example.net (via leakc)</c> would leave as <c>via leakc &lt;bob@example.net&gt;</c>; and
/// it has no call that strips them, so this small scanner does, minding quoted strings and
/// domain literals, where a parenthesis is text.
/// </summary>
internal static class Comments
{
    /// <summary>The value with each comment replaced by a space; null if a comment never closes.</summary>
    public static byte[]? Strip(byte[] raw, out bool found)
    {
        found = false;
        if (Array.IndexOf(raw, (byte)'(') < 0)
            return raw;
        var output = new List<byte>(raw.Length);
        var depth = 0;
        byte? closer = null;
        for (var i = 0; i < raw.Length; i++)
        {
            var c = raw[i];
            if (depth > 0)
            {
                if (c == '\\')
                    i++;
                else if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    output.Add((byte)' ');
                continue;
            }
            output.Add(c);
            if (closer is not null)
            {
                if (c == '\\' && i + 1 < raw.Length)
                    output.Add(raw[++i]);
                else if (c == closer)
                    closer = null;
            }
            else if (c == '"')
                closer = (byte)'"';
            else if (c == '[')
                closer = (byte)']';
            else if (c == '(')
            {
                output.RemoveAt(output.Count - 1);
                depth = 1;
                found = true;
            }
        }
        return depth > 0 ? null : output.ToArray();
    }
}
