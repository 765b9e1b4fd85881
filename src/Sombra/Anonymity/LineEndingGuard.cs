namespace Sombra.Anonymity;

/// <summary>
/// A read-only pass-through that refuses a bare CR or LF anywhere in the input (RFC 5322
/// section 2.3). MimeKit accepts both as line ends, and the copy-through of bodies would carry
/// them into the output; RFC 5321 section 2.3.8 forbids them on the wire, and ambiguous line
/// ends are how SMTP smuggling hides a second message.
/// </summary>
/// <remarks>
/// It also reads an empty input as one empty line: RFC 5321 allows an empty DATA block, and
/// MimeKit cannot parse zero bytes, while an empty header section and an empty body is exactly
/// what such a message is.
/// </remarks>
internal sealed class LineEndingGuard(Stream inner) : ReadOnlyStream
{
    private bool _lastWasCr;
    private bool _seenInput;

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = inner.Read(buffer);
        Check(buffer[..n]);
        return EmptyAsBlankLine(buffer, n);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Check(buffer.Span[..n]);
        return EmptyAsBlankLine(buffer.Span, n);
    }

    private int EmptyAsBlankLine(Span<byte> buffer, int n)
    {
        if (_seenInput || buffer.Length < 2)
            return n;
        _seenInput = true;
        if (n > 0)
            return n;
        "\r\n"u8.CopyTo(buffer);
        return 2;
    }

    private void Check(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            if (_lastWasCr)
                throw Bare();
            return;
        }
        var i = 0;
        if (_lastWasCr)
        {
            if (data[0] != (byte)'\n')
                throw Bare();
            i = 1;
        }
        _lastWasCr = false;
        while (true)
        {
            var k = data[i..].IndexOfAny((byte)'\r', (byte)'\n');
            if (k < 0)
                return;
            i += k;
            if (data[i] == (byte)'\n')
                throw Bare();
            if (i + 1 == data.Length)
            {
                _lastWasCr = true;
                return;
            }
            if (data[i + 1] != (byte)'\n')
                throw Bare();
            i += 2;
        }
    }

    private static ScrubRefusedException Bare() =>
        new("the message has a bare CR or LF; every line must end in CRLF (RFC 5322 section 2.3)");
}
