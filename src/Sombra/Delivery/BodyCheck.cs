namespace Sombra.Delivery;

/// <summary>
/// Refuses a stored message with a bare CR or LF before any of it is sent. Passed on, such a byte
/// lets a crafted message end DATA early at a next hop that reads lines loosely and smuggle a
/// second message behind it (SMTP smuggling, 2023); RFC 5321 section 2.3.8 allows CR and LF only
/// as the pair CRLF.
/// </summary>
internal static class BodyCheck
{
    /// <summary>
    /// Problem is null when every CR and LF is part of a CRLF pair. A last line without CRLF is no
    /// problem: the CRLF that ends DATA ends it too.
    /// </summary>
    public readonly record struct Shape(string? Problem, bool EndsWithCrlf);

    public static async Task<Shape> CheckAsync(Stream body, CancellationToken cancellationToken)
    {
        body.Position = 0;
        var buffer = new byte[64 * 1024];
        var previous = (byte)'\n';
        long total = 0;
        int n;
        while ((n = await body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            for (var i = 0; i < n; i++)
            {
                var c = buffer[i];
                if (c == '\n' && previous != '\r')
                    return new("a bare LF", false);
                if (previous == '\r' && c != '\n')
                    return new("a bare CR", false);
                previous = c;
            }
            total += n;
        }
        if (total == 0)
            return new("no content", false);
        if (previous == '\r')
            return new("a bare CR", false);
        return new(null, previous == '\n');
    }
}
